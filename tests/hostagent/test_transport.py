"""The no-server broker: messages appear whole or not at all."""

import threading

from kombu import Connection

from coupler_common import transport


def connection(tmp_path):
    return Connection(transport.BROKER_URL,
                      transport_options=transport.filesystem_broker_options(tmp_path))


def test_a_message_round_trips_through_the_folder(tmp_path):
    options = transport.filesystem_broker_options(tmp_path)
    transport.ensure_folders(options)
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue("host.dgx-1")
        queue.put({"task": "hostagent.provision", "job": 7})
        message = queue.get(timeout=2)
        assert message.payload == {"task": "hostagent.provision", "job": 7}
        message.ack()
        queue.close()


def test_a_partial_file_is_never_consumed(tmp_path):
    options = transport.filesystem_broker_options(tmp_path)
    transport.ensure_folders(options)
    # What a writer leaves while it is still writing: no queue matches it.
    (tmp_path / "out" / ".half-written.partial").write_bytes(b'{"body": ')
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue("workflow")
        queue.put("whole")
        assert queue.get(timeout=2).payload == "whole"
        queue.close()


def test_concurrent_writers_and_a_reader_only_see_whole_messages(tmp_path):
    options = transport.filesystem_broker_options(tmp_path)
    transport.ensure_folders(options)
    sent = 300
    body = {"pad": "x" * 20000}  # large enough that a non-atomic write is visible

    errors = []

    def write(start):
        # Each writer declares the queue itself, as every process does at start.
        try:
            with connection(tmp_path) as conn:
                queue = conn.SimpleQueue("stress")
                for i in range(start, start + sent // 3):
                    queue.put({**body, "i": i})
                queue.close()
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(repr(exc))

    writers = [threading.Thread(target=write, args=(n * 100,)) for n in range(3)]
    for w in writers:
        w.start()
    seen = []
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue("stress")
        try:
            while len(seen) < sent:
                message = queue.get(timeout=10)
                seen.append(message.payload["i"])
                message.ack()
        finally:
            queue.close()
            for w in writers:
                w.join()
    assert errors == []
    assert sorted(seen) == list(range(0, 100)) + list(range(100, 200)) + list(range(200, 300))
    assert not [p for p in (tmp_path / "out").iterdir() if p.suffix == ".partial"]
