"""All cores: ``kafka-esm run --processes N`` against one process, on one 8-partition topic.

    python -m bench.processes [--bootstrap HOST:PORT] [--records 200000]

Each run is a real ``kafka-esm run`` (its members write ``time pid count`` lines through
``bench.delivery_handler``, a no-op handler) reading a pre-filled topic of 1 KB records
from the start in a fresh group; the rate is the steady state between 30 % and 90 % of
the records (30 %: the second member has joined); the two runs alternate so load from
elsewhere hits both alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.cluster import fill_topic, kafka_cluster, new_topic
from bench.stats import median, steady_rate
from bench.takeover import Poller, mapping_file

PARTITIONS = 8


def rate(kafka_topic: tuple[object, str], folder: Path, records: int, processes: int) -> float:
    kafka, topic = kafka_topic
    mapping = mapping_file(kafka, topic, folder, batch_size=1000)  # type: ignore[arg-type]
    poller = Poller(folder, mapping, "--processes", str(processes))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            lines = poller.log.read_text().splitlines() if poller.log.exists() else []
            marks = [(float(t), int(c)) for t, _pid, c in (line.split() for line in lines)]
            if sum(c for _, c in marks) >= records:
                return steady_rate(marks, records, low=0.3)  # past the second join
            time.sleep(0.5)
        raise TimeoutError(f"{processes} process(es) did not read {records} records")
    finally:
        poller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processes")
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--records", type=int, default=600_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[int, list[float]] = {1: [], 2: []}
    with kafka_cluster(args.bootstrap) as kafka, tempfile.TemporaryDirectory() as tmp:
        topic = new_topic(kafka, PARTITIONS, prefix="processes")
        fill_topic(kafka, topic, args.records, 1000, PARTITIONS)
        for _ in range(args.runs):
            for processes in (1, 2):
                results[processes].append(rate((kafka, topic), Path(tmp), args.records, processes))
    one, two = median(results[1]), median(results[2])
    ratios = [b / a for a, b in zip(results[1], results[2], strict=True)]
    print(f"{PARTITIONS} partitions, {args.records} records of 1 KB, BatchSize 1000, no-op handler")
    print(f"  1 process    {one:>9,.0f} rec/s  {[round(r) for r in results[1]]}")
    print(f"  2 processes  {two:>9,.0f} rec/s  {[round(r) for r in results[2]]}")
    print(f"  ratio        x{median(ratios):.2f} (paired runs {[round(r, 2) for r in ratios]})")


if __name__ == "__main__":
    main()
