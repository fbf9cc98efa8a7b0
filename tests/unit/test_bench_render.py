"""bench/common.py's result pages link a chart only when one is drawn."""

from bench import common


def _page(**fields):
    result = common.Result("A title", columns=["a"], rows=[[1]], **fields)
    return common.render_markdown("page", result)


def test_a_page_without_a_chart_links_no_image():
    assert "![page](page.png)" not in _page()


def test_a_page_with_a_chart_links_it():
    chart = common.Chart("c", "y", ["x"], {"s": [1.0]})
    assert "![page](page.png)" in _page(charts=[chart])
