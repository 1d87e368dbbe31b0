"""What the operator and the recorder share: the RecordingSession API models, the pod
contract between them, and log formatting. Both depend on this package; neither imports
the other.
"""
