#!/bin/sh
# Cheap stand-in recorder for the operator-scale benchmark (bench/operator_scale.py).
#
# The pod contract of lucid_devstack.standin_recorder without a Python interpreter
# per pod (~30 MB each; 1,000 of them would measure the machine's memory, not the
# operator): report `pipeline.state: Capturing` on its own session through the status
# subresource with the pod's service-account token, wait for SIGTERM, report
# `Finalized` and exit 0, the way the real recorder flushes. One dash (~1 MB) and one
# sleep per pod.
set -eu

sa=/var/run/secrets/kubernetes.io/serviceaccount
url="https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}/apis/lucid.dev/v1alpha1"
url="${url}/namespaces/${LUCID_RECORDER_SESSION_NAMESPACE}/recordingsessions"
url="${url}/${LUCID_RECORDER_SESSION_NAME}/status"

report() {
    # The token goes in through stdin (-H @-): printf is a builtin, so it never shows
    # up in an argv that `ps` could list.
    printf 'Authorization: Bearer %s\nContent-Type: application/merge-patch+json\n' \
        "$(cat "$sa/token")" |
        curl --silent --show-error --fail --max-time 15 --retry 5 --retry-all-errors \
            --cacert "$sa/ca.crt" -H @- -X PATCH \
            --data "{\"status\":{\"pipeline\":{\"state\":\"$1\"}}}" \
            --output /dev/null "$url"
}

stopped() {
    report Finalized || echo "stand-in recorder: could not report Finalized" >&2
    echo "stand-in recorder: SIGTERM received, exiting"
    exit 0
}

trap stopped TERM
report Capturing
echo "stand-in recorder: capturing"
# `wait` returns as soon as the trapped SIGTERM arrives; a foreground sleep would not.
sleep 2147483647 &
wait $!
