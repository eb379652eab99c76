"""kafka_fixture.py — one real Kafka broker per pytest session
(tests/kafka/broker.sh: KRaft mode, Maven Central jars, a temporary
directory, free 127.0.0.1 ports), stopped by its pid at the end, plus the
client work tests do with confluent-kafka. conftest.py provides the
fixture to every test module (importing it into a module would start a
broker of that module's own):

    def test_x(kafka_broker):
        kafka_broker.create_topic("t", partitions=2)
        ... kafka_broker.bootstrap ...
        kafka_broker.restart()     # same ports and data: a broker restart mid-stream

Skips when Java, the broker jars (scripts/setup.sh fetches them) or
confluent-kafka are missing.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "kafka" / "broker.sh"


class KafkaBroker:
    """A broker started by tests/kafka/broker.sh in `dir`."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.bootstrap = self._run("start")
        self._names = itertools.count()

    def _run(self, cmd: str) -> str:
        r = subprocess.run([str(SCRIPT), cmd, str(self.dir)], capture_output=True, text=True,
                           timeout=180)
        if r.returncode == 77:
            pytest.skip(r.stderr.strip())
        if r.returncode != 0:
            raise RuntimeError(f"broker.sh {cmd} failed: {r.stderr.strip()}")
        return r.stdout.strip()

    def stop(self) -> None:
        self._run("stop")

    def start(self) -> None:
        self._run("start")

    def restart(self) -> None:
        """Stops the broker and starts it again on the same ports and data."""
        self._run("restart")

    def unique(self, prefix: str) -> str:
        """A topic (or prefix) name not used before in this session."""
        return f"{prefix}-{next(self._names)}"

    def create_topic(self, name: str, partitions: int = 1) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions,
                                                replication_factor=1)])
        futures[name].result(timeout=60)
        return name

    def producer(self, **conf: Any) -> Any:
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.bootstrap, **conf})

    def produce(self, topic: str, values: list[bytes], *, partition: Optional[int] = None,
                keys: Optional[list[Optional[bytes]]] = None,
                headers: Optional[list[list[tuple[str, bytes]]]] = None) -> None:
        p = self.producer()
        for i, v in enumerate(values):
            kw: dict[str, Any] = {}
            if partition is not None:
                kw["partition"] = partition
            if keys is not None:
                kw["key"] = keys[i]
            if headers is not None:
                kw["headers"] = headers[i]
            p.produce(topic, value=v, **kw)
            p.poll(0)
        assert p.flush(60) == 0

    def consume(self, topic: str, *, isolation: str = "read_committed",
                partitions: Optional[list[int]] = None,
                start: Optional[dict[int, int]] = None) -> list[Any]:
        """Every record a consumer with `isolation` sees, from `start` (or
        the beginning) to the end of each partition, in partition order."""
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "pt-tests",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "isolation.level": isolation})
        if partitions is None:
            md = c.list_topics(topic, timeout=30)
            partitions = sorted(md.topics[topic].partitions)
        out = []
        for p in partitions:
            off = (start or {}).get(p, -2)  # OFFSET_BEGINNING
            c.assign([TopicPartition(topic, p, off)])
            for _ in range(1000):
                m = c.poll(1.0)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        break
                    raise RuntimeError(str(m.error()))
                out.append(m)
        c.close()
        return out


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    pytest.importorskip("confluent_kafka")
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka") / "broker")
    try:
        yield broker
    finally:
        broker.stop()
