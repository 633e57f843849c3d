"""The page in a real browser (Debian's Chromium driven by Playwright): the map draws, hover
shows the sample, a click lists the neighbours `selfsup search` finds, the query box works for
an image and a sentence, errors show in the page, two runs side by side. Screenshots are saved
in each test's temporary folder."""

import io

import numpy as np
import pytest
from explore_fixtures import explorer, serving
from PIL import Image

from selfsup.data import load_data
from selfsup.search import build_index, load_index


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    page.close()
    assert not errors, f"the page's script failed: {errors}"


def open_page(page, url):
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)


def point(page, run, pos):
    """The page coordinates of map point `pos` of `run`."""
    box = page.locator(f"#map-{run} canvas").bounding_box()
    x, y = page.evaluate(f"window.selfsupExplore.screenOf({run}, {pos})")
    return box["x"] + x, box["y"] + y


def listed(page, selector):
    return page.locator(selector).evaluate_all("items => items.map(i => i.dataset.id)")


def search_without(index, query, sample_id, k):
    return [i for i, _ in index.search(query, k + 1) if i != sample_id][:k]


def test_map_hover_and_click_show_the_sample_and_searchs_neighbours(
    page, digits_explorer, digits_run, tmp_path
):
    build_index(digits_run, out=tmp_path / "index")
    index = load_index(digits_run, index_dir=tmp_path / "index")
    test = load_data("digits").test
    with serving([digits_explorer]) as url:
        open_page(page, url)
        canvas = page.locator("#map-0 canvas")
        canvas.screenshot(path=tmp_path / "map.png")
        pixels = np.asarray(Image.open(tmp_path / "map.png").convert("RGB")).reshape(-1, 3)
        coloured = pixels[(pixels.max(1) - pixels.min(1)) > 60]  # saturated: drawn points
        assert len(coloured) > 360 and len(np.unique(coloured // 32, axis=0)) >= 5

        page.mouse.move(*point(page, 0, 7))
        page.wait_for_selector("#hover:not([hidden]) img", timeout=10_000)
        assert "test/7" in page.inner_text("#hover")
        page.wait_for_function("document.querySelector('#hover img').naturalWidth > 0")
        page.screenshot(path=tmp_path / "hover.png")

        page.mouse.click(*point(page, 0, 7))
        page.wait_for_selector("#neighbours-0 ol.samples:not(.selected) li", timeout=10_000)
        shown = listed(page, "#neighbours-0 ol.samples:not(.selected) li")
        assert shown == search_without(index, test.images[7], "test/7", 10)
        label = str(int(test.labels[7]))
        wrong = page.locator("#neighbours-0 ol.samples:not(.selected) li.wrong .label")
        assert all(text.strip().rstrip(" ✗") != label for text in wrong.all_inner_texts())
        page.screenshot(path=tmp_path / "neighbours.png")

        for tab, selector in [
            ("duplicates", "#duplicates p.note"),
            ("outliers", "#panel ol.samples li"),
            ("accuracy", "#confusion"),
        ]:
            page.click(f"#tabs button[data-tab={tab}]")
            page.wait_for_selector(selector, timeout=10_000)
            page.screenshot(path=tmp_path / f"{tab}.png")
        overall = digits_explorer.class_accuracy()["overall"]
        assert f"{100 * overall:.2f} % overall" in page.inner_text("#panel")


def test_an_uploaded_image_and_a_bad_one(page, digits_explorer, digits_run, tmp_path):
    build_index(digits_run, out=tmp_path / "index")
    index = load_index(digits_run, index_dir=tmp_path / "index")
    image = tmp_path / "seven.png"
    Image.fromarray(load_data("digits").test.images[7, 0].numpy()).save(image)
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"this is not a picture")
    with serving([digits_explorer]) as url:
        open_page(page, url)
        page.set_input_files("#query-file", str(image))
        page.click("#query-form button")
        page.wait_for_selector("#query-0 li", timeout=10_000)
        assert listed(page, "#query-0 li") == [i for i, _ in index.search(image, 10)]
        assert page.evaluate("window.selfsupExplore.state.maps[0].highlight.query") is not None
        assert page.locator("#error").is_hidden()
        page.screenshot(path=tmp_path / "query-image.png")

        page.set_input_files("#query-file", str(bad))
        page.click("#query-form button")
        page.wait_for_selector("#error:not([hidden])", timeout=10_000)
        assert "cannot decode query image scan.png" in page.inner_text("#error")
        page.screenshot(path=tmp_path / "query-bad-image.png")

        page.set_input_files("#query-file", [])
        page.fill("#query-text", "a handwritten seven")
        page.click("#query-form button")
        page.wait_for_function(
            "document.querySelector('#error').textContent.includes('a sentence cannot be')"
        )
        page.screenshot(path=tmp_path / "query-sentence-on-images.png")

        page.mouse.click(*point(page, 0, 3))  # the server still answers
        page.wait_for_selector("#neighbours-0 ol.samples:not(.selected) li", timeout=10_000)
        assert page.locator("#error").is_hidden()


def test_a_sentence_query_and_hover_on_a_text_run(page, text_explorer, text_run, tmp_path):
    build_index(text_run, out=tmp_path / "index")
    index = load_index(text_run, index_dir=tmp_path / "index")
    sentence = "a cat sleeps on the sofa"
    with serving([text_explorer]) as url:
        open_page(page, url)
        page.mouse.move(*point(page, 0, 5))
        page.wait_for_selector("#hover:not([hidden]) p.text", timeout=10_000)
        assert page.inner_text("#hover p.text") == text_explorer.ids[5]
        page.fill("#query-text", sentence)
        page.click("#query-form button")
        page.wait_for_selector("#query-0 li", timeout=10_000)
        assert listed(page, "#query-0 li") == [i for i, _ in index.search(sentence, 10)]
        page.screenshot(path=tmp_path / "query-sentence.png")
        page.click("#tabs button[data-tab=accuracy]")
        page.wait_for_selector("#panel p.note")
        assert "no labels" in page.inner_text("#panel")


def test_two_runs_side_by_side(page, digits_explorer, digits_run_b, tmp_path):
    other = explorer(digits_run_b)
    with serving([digits_explorer, other]) as url:
        open_page(page, url)
        assert page.locator("#map-1 canvas").is_visible()
        page.mouse.click(*point(page, 0, 11))
        page.wait_for_selector("#neighbours-1 ol.samples:not(.selected) li", timeout=10_000)
        row = digits_explorer.start + 11
        for run, ex in enumerate([digits_explorer, other]):
            expected = [n["id"] for n in ex.neighbours(ex.row(sample_id="test/11"), 10)]
            assert listed(page, f"#neighbours-{run} ol.samples:not(.selected) li") == expected
            assert listed(page, f"#neighbours-{run} ol.selected li") == ["test/11"]
        a = listed(page, "#neighbours-0 ol.samples:not(.selected) li")
        b = listed(page, "#neighbours-1 ol.samples:not(.selected) li")
        assert a != b  # two encoders, two neighbourhoods
        selected_b = page.evaluate("window.selfsupExplore.state.maps[1].highlight.selected")
        assert selected_b == other.row(sample_id="test/11") - other.start == row - other.start
        page.screenshot(path=tmp_path / "side-by-side.png")
        png = Image.open(io.BytesIO(page.locator("#map-1 canvas").screenshot()))
        assert np.asarray(png.convert("L")).min() < 128  # the second map is drawn too


def test_hover_on_a_series_run_draws_its_sparkline(page, series_run, tmp_path):
    run, _ = series_run
    ex = explorer(run)
    with serving([ex]) as url:
        open_page(page, url)
        page.mouse.move(*point(page, 0, 2))
        page.wait_for_selector("#hover:not([hidden]) svg polyline", timeout=10_000)
        points = page.get_attribute("#hover svg polyline", "points").split()
        assert len(points) == len(ex.sample(ex.start + 2)["series"][0]) == 64
        page.screenshot(path=tmp_path / "series-hover.png")
