import asyncio

from lucid_recorder.status_report import RateGate, StatusReporter


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_gate_bounds_routine_writes_but_not_significant_ones():
    gate = RateGate(interval=5)
    assert gate.due(0, significant=False)
    gate.last_write = 0
    assert not gate.due(4.9, significant=False)
    assert gate.due(4.9, significant=True)
    assert gate.due(5.0, significant=False)


def test_only_the_newest_view_is_written_at_the_bounded_rate():
    written, clock = [], Clock()
    reporter = StatusReporter(written.append, interval=5, clock=clock)
    for n in range(100):  # a burst of per-frame updates
        reporter.update({"updatesCaptured": n})
        reporter.flush()
    assert written == [{"status": {"pipeline": {"updatesCaptured": 0}}}]
    clock.now += 5
    reporter.flush()
    assert written[-1] == {"status": {"pipeline": {"updatesCaptured": 99}}}
    assert len(written) == 2


def test_failed_write_is_retried_and_never_raises():
    calls, clock = [], Clock()

    def flaky(patch):
        calls.append(patch)
        if len(calls) < 3:
            raise ConnectionError("apiserver down")

    reporter = StatusReporter(flaky, interval=5, clock=clock)
    reporter.update({"chunksStored": 1}, significant=True)
    assert reporter.flush() is False
    assert reporter.flush() is False
    assert reporter.flush() is True
    assert reporter.failures == 2 and reporter.writes == 1
    assert calls[-1] == {"status": {"pipeline": {"chunksStored": 1}}}


def test_run_flushes_last_view_on_stop():
    written = []
    reporter = StatusReporter(written.append, interval=3600)

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.create_task(reporter.run(stop, tick=0.01))
        reporter.update({"state": "Capturing"})
        await asyncio.sleep(0.05)
        reporter.update({"state": "Finalized"})
        stop.set()
        await task

    asyncio.run(scenario())
    assert written[0]["status"]["pipeline"]["state"] == "Capturing"
    assert written[-1]["status"]["pipeline"]["state"] == "Finalized"


def test_a_view_reported_during_a_write_is_not_lost():
    # flush() runs in a worker thread: the final Finalized view can arrive while
    # a routine write is in flight, and must still be written afterwards.
    written = []

    def patch(body):
        written.append(body["status"]["pipeline"]["state"])
        if len(written) == 1:
            reporter.update({"state": "Finalized"}, significant=True)

    reporter = StatusReporter(patch, interval=5, clock=Clock())
    reporter.update({"state": "Capturing"})
    assert reporter.flush() is False  # written, but a newer view is waiting
    assert reporter.flush(force=True) is True
    assert written == ["Capturing", "Finalized"]
