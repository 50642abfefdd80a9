"""The landing page starts cleanly under Streamlit's AppTest."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

HOME = Path(__file__).resolve().parent.parent / "app" / "Home.py"


def test_home_runs_and_shows_title(monkeypatch) -> None:
    monkeypatch.setenv("GAMO_WARM_UP", "0")   # no 30 s UMAP compilation in the test process
    at = AppTest.from_file(str(HOME), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["GAMO Lab"]
    headers = [h.value for h in at.header]
    assert "What class imbalance does to a classifier" in headers
    assert "GAMO: three players" in headers
    text = " ".join(m.value for m in at.markdown)
    assert "convex hull" in text
    assert "ACSA" in text and "GM" in text


def test_home_links_and_explains_the_image_lab(monkeypatch) -> None:
    monkeypatch.setenv("GAMO_WARM_UP", "0")
    at = AppTest.from_file(str(HOME), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    links = [el.proto.label for el in at.get("page_link")]
    assert "Toy Lab" in links and "Image Lab" in links
    captions = " ".join(c.value for c in at.caption)
    assert "real images" in captions and "audit" in captions
    assert "Image Lab" in " ".join(m.value for m in at.markdown)


def test_home_links_and_explains_the_runs_page(monkeypatch) -> None:
    monkeypatch.setenv("GAMO_WARM_UP", "0")
    at = AppTest.from_file(str(HOME), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    links = [el.proto.label for el in at.get("page_link")]
    assert "Runs" in links and links.index("Runs") > links.index("Image Lab")
    captions = " ".join(c.value for c in at.caption)
    assert "Every stored run" in captions and "export" in captions and "delete" in captions
