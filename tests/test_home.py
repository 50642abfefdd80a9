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


def test_home_picture_shows_what_its_caption_says(monkeypatch) -> None:
    """Every cross the caption promises can be seen (none hides another), the title is a heading
    above the chart (Plotly cut it in a narrow column), and eq. 1 comes in two short lines."""
    import numpy as np

    monkeypatch.setenv("GAMO_WARM_UP", "0")
    at = AppTest.from_file(str(HOME), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    src = HOME.read_text()
    ns: dict = {"__file__": str(HOME)}
    exec(src[: src.index("st.set_page_config")], ns)          # the page's helpers, not the page
    fig = ns["illustration"]()
    (gen,) = [t for t in fig.data if t.meta == "generated"]
    x = np.c_[gen.x, gen.y]
    d = np.linalg.norm(x[:, None] - x[None], axis=2) + np.eye(len(x)) * 99
    assert len(x) == ns["N_CROSSES"] and d.min() > 0.4           # about 12 px apart at 400 px wide
    (parents,) = [t for t in fig.data if t.meta == "parent-markers"]
    p = np.c_[parents.x, parents.y]
    assert (np.linalg.norm(p[:, None] - p[None], axis=2) + np.eye(len(p)) * 99).min() > 0.6
    assert not (fig.layout.title.text or "")
    captions = " ".join(c.value for c in at.caption)
    assert f"Red crosses: {ns['N_CROSSES']} weighted averages" in captions
    assert any(ns["PICTURE_TITLE"] in m.value for m in at.markdown)
    eq = [el.value for el in at.latex if "w_j" in el.value]
    assert len(eq) == 2 and all(len(b) < 60 for b in eq), eq


def test_home_links_and_explains_the_ablation_grid(monkeypatch) -> None:
    monkeypatch.setenv("GAMO_WARM_UP", "0")
    at = AppTest.from_file(str(HOME), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    links = [el.proto.label for el in at.get("page_link")]
    assert "Ablation Grid" in links and links.index("Image Lab") < links.index("Ablation Grid") < links.index("Runs")
    captions = " ".join(c.value for c in at.caption)
    assert "Figure 4" in captions and "claims checked with a measurement" in captions
    assert "The Ablation Grid" in " ".join(m.value for m in at.markdown)


def test_home_links_and_explains_gamo2pix(monkeypatch) -> None:
    monkeypatch.setenv("GAMO_WARM_UP", "0")
    at = AppTest.from_file(str(HOME), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    links = [el.proto.label for el in at.get("page_link")]
    assert "GAMO2pix" in links and links.index("GAMO2pix") > links.index("Runs")
    captions = " ".join(c.value for c in at.caption)
    assert "images of GAMO's samples" in captions and "decoders" in captions
    assert "**GAMO2pix**" in " ".join(m.value for m in at.markdown)
