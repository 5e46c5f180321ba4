"""Prometheus view of stream health with bounded cardinality: counts and a bitrate distribution over the live
streams of this node, never a label per stream (stream ids would grow the series without bound)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from retake.media.health import HealthReport

# 300: the low-bitrate threshold; 4500/8000: 1080p30/60. Labelled "300.0" etc., as prometheus_client's Histogram.
BITRATE_BUCKETS_KBPS = (300, 1000, 2500, 4500, 8000)
CONDITIONS = ("frozen", "black", "silent", "low_bitrate")


class StreamHealthCollector(Collector):
    """``retake_stream_health_streams{condition}``, ``retake_stream_bitrate_kbps`` (a gauge histogram of the
    streams' 10 s bitrates) and ``retake_stream_reconnects`` (summed over the live streams). The /metrics route
    hands it the current reports before each scrape (``update``)."""

    def __init__(self) -> None:
        self._reports: tuple[HealthReport, ...] = ()

    def update(self, reports: Iterable[HealthReport]) -> None:
        self._reports = tuple(reports)

    def collect(self) -> Iterator[Metric]:
        reports = self._reports
        conditions = GaugeMetricFamily(
            "retake_stream_health_streams",
            "live streams on this node with a health condition (frozen, black, silent, low_bitrate)",
            labels=["condition"],
        )
        for name in CONDITIONS:
            conditions.add_metric([name], sum(1 for r in reports if getattr(r, name)))
        yield conditions
        rates = [r.bitrate_kbps_10s for r in reports if r.bitrate_kbps_10s is not None]
        buckets = [(f"{edge:.1f}", sum(1 for kbps in rates if kbps <= edge)) for edge in BITRATE_BUCKETS_KBPS]
        buckets.append(("+Inf", len(rates)))
        yield GaugeHistogramMetricFamily(
            "retake_stream_bitrate_kbps",
            "live streams on this node by audio + video bitrate over the last 10 s, in kb/s",
            buckets=buckets,
            gsum_value=sum(rates),
        )
        yield GaugeMetricFamily(
            "retake_stream_reconnects",
            "encoder reconnects of the sessions live on this node, summed",
            value=sum(r.reconnects for r in reports),
        )
