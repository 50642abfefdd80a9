"""The landing page starts cleanly under Streamlit's AppTest."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

HOME = Path(__file__).resolve().parent.parent / "app" / "Home.py"


def test_home_runs_and_shows_title() -> None:
    at = AppTest.from_file(str(HOME), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["GAMO Lab"]
    headers = [h.value for h in at.header]
    assert "What class imbalance does to a classifier" in headers
    assert "GAMO: three players" in headers
    text = " ".join(m.value for m in at.markdown)
    assert "convex hull" in text
    assert "ACSA" in text and "GM" in text
