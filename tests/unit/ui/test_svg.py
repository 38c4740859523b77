import datetime as dt
import xml.etree.ElementTree as ET

from evals.ui.svg import Point, line_chart

NS = "{http://www.w3.org/2000/svg}"
DAY = dt.date(2026, 11, 1)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or the browser would drop it


def test_series_draws_a_line_with_a_dot_per_value() -> None:
    points = [Point(DAY + dt.timedelta(days=i), v, f"rev{i}") for i, v in enumerate([0.5, 0.6, 0.55])]
    root = parse(line_chart("Accuracy", points))
    assert len(root.findall(f"{NS}circle")) == 3
    [line] = root.findall(f"{NS}polyline")
    xs = [float(pair.split(",")[0]) for pair in line.get("points", "").split()]
    assert xs == sorted(xs)
    tips = [c.find(f"{NS}title").text for c in root.findall(f"{NS}circle")]  # type: ignore[union-attr]
    assert tips[0] == "2026-11-01 rev0: 0.5"


def test_missing_value_breaks_the_line() -> None:
    values = [0.5, 0.6, None, 0.7, 0.8]
    points = [Point(DAY + dt.timedelta(days=i), v) for i, v in enumerate(values)]
    root = parse(line_chart("Accuracy", points))
    assert len(root.findall(f"{NS}polyline")) == 2
    assert len(root.findall(f"{NS}circle")) == 4


def test_single_point_and_flat_series_render() -> None:
    root = parse(line_chart("TTFT", [Point(DAY, 120.0)]))
    [dot] = root.findall(f"{NS}circle")
    assert 0 < float(dot.get("cy", "nan")) < 150


def test_no_data() -> None:
    svg = line_chart("Cost", [Point(DAY, None)])
    assert "no data" in svg and "<circle" not in svg


def test_labels_are_escaped() -> None:
    svg = line_chart("<b>", [Point(DAY, 1.0, "<script>")])
    assert "<script>" not in svg and "<b>" not in svg
    parse(svg)
