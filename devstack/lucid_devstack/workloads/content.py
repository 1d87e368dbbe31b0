"""Generated, deterministic content for the workloads: photo-like images, web pages, text.

Nothing is downloaded and nothing is shipped: the same seed gives the same bytes on
every machine, so two runs of a workload show the same screens.
"""

from __future__ import annotations

import html
import random
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

WORDS = (
    "session recorder desktop frame segment keyframe chunk upload latency operator "
    "cluster namespace policy audit evidence exact lossless pixel screen window browser "
    "terminal office report table figure quarter revenue budget review meeting schedule "
    "the a of and to in is for on with as by that this from at are be it an or was we "
    "which their has more than will can all its not but have been one also new about"
).split()


def _noise(rng: random.Random, size: tuple[int, int], amount: float) -> Image.Image:
    """Uniform noise around mid-grey, plus or minus amount * 128, from the seeded generator.

    Not Image.effect_noise: that draws from the C library's rand, unseeded, so two runs
    would show different pictures.
    """
    noise = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    return Image.blend(Image.new("L", size, 128), noise, amount)


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like RGB image: colour gradients, soft blobs and fine grain.

    What makes photographs hard for screen codecs is that no two neighbouring pixels
    are equal: smooth low-frequency colour (sky, light) plus sensor noise. This has both.
    """
    rng = random.Random(seed)
    channels = []
    for _ in range(3):
        # A gradient at a random angle, cut from the middle of a larger rotated one so
        # that no corner of the rotation shows.
        side = 2 * max(width, height)
        gradient = Image.linear_gradient("L").resize((side, side), Image.Resampling.BICUBIC)
        gradient = gradient.rotate(rng.uniform(0, 360), resample=Image.Resampling.BICUBIC)
        left, top = (side - width) // 2, (side - height) // 2
        gradient = gradient.crop((left, top, left + width, top + height))
        # Soft blobs: coarse noise blown up (clouds, foliage, out-of-focus background).
        blobs = _noise(rng, (max(4, width // 64), max(3, height // 64)), rng.uniform(0.3, 0.6))
        blobs = blobs.resize((width, height), Image.Resampling.BICUBIC)
        channels.append(Image.blend(gradient, blobs, rng.uniform(0.35, 0.6)))
    image = Image.merge("RGB", channels)
    # A few shapes with soft edges, like objects in a scene.
    shapes = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(shapes)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(max(8, width // 16), max(16, width // 4))
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    shapes = shapes.filter(ImageFilter.GaussianBlur(max(2, width // 80)))
    image = Image.blend(image, shapes, 0.35)
    # Grain: per-pixel noise, the same in every channel, as luminance noise is.
    grain = _noise(rng, (width, height), 0.2).convert("RGB")
    return ImageChops.add(ImageChops.multiply(image, Image.new("RGB", image.size,
                                                               (235, 235, 235))),
                          grain, scale=1.0, offset=-100)


def sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng, rng.randrange(6, 18)) for _ in range(rng.randrange(3, 7)))


def document(path: Path, seed: int, paragraphs: int = 300) -> Path:
    """A long plain-text document (a report), wrapped at 76 columns, for pagers."""
    import textwrap

    rng = random.Random(seed)
    lines: list[str] = []
    for number in range(paragraphs):
        if number % 12 == 0:
            lines += ["", f"{number // 12 + 1}. {sentence(rng, 4).upper()}", ""]
        lines += [*textwrap.wrap(paragraph(rng), 76), ""]
    path.write_text("\n".join(lines) + "\n")
    return path


def spreadsheet(path: Path, seed: int, rows: int = 400) -> Path:
    """A wide table of figures as plain text, the way a terminal spreadsheet shows one."""
    rng = random.Random(seed)
    header = f"{'Id':>5} {'Item':<12}" + "".join(f"{m:>10}" for m in
                                                ("Jan", "Feb", "Mar", "Apr", "May", "Jun"))
    lines = [header, "-" * len(header)]
    for row in range(rows):
        lines.append(f"{row + 1:>5} {rng.choice(WORDS):<12}"
                     + "".join(f"{rng.randrange(0, 999999):>10,}" for _ in range(6)))
    path.write_text("\n".join(lines) + "\n")
    return path


# -- web pages ----------------------------------------------------------------------------

PAGES = ("index", "article", "tables", "gallery")
NAV_HEIGHT = 64
_STYLE = f"""
body {{ font-family: sans-serif; margin: 0 0 {NAV_HEIGHT + 20}px 0; color: #222; }}
main {{ max-width: 860px; margin: 0 auto; padding: 8px 24px; line-height: 1.5; }}
nav {{ position: fixed; left: 0; right: 0; bottom: 0; height: {NAV_HEIGHT}px;
       display: flex; background: #1d3557; }}
nav a {{ flex: 1; color: #fff; text-decoration: none; font-size: 22px;
         text-align: center; line-height: {NAV_HEIGHT}px; border-right: 1px solid #457b9d; }}
nav a:hover {{ background: #457b9d; }}
table {{ border-collapse: collapse; width: 100%; font-size: 14px; }}
th {{ background: #457b9d; color: #fff; position: sticky; top: 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
tr:nth-child(even) td {{ background: #f1faee; }}
.grid {{ display: grid; grid-template-columns: repeat(3, 1fr); gap: 10px; }}
.grid figure {{ margin: 0; }} .grid img {{ width: 100%; display: block; }}
figure.wide img {{ width: 100%; }} details {{ margin: 12px 0; }}
"""


def _page(title: str, body: str) -> str:
    nav = "".join(f'<a href="{name}.html" id="nav-{name}">{name.title()}</a>'
                  for name in PAGES)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head><body><main>{body}</main>"
            f"<nav>{nav}</nav></body></html>\n")


def web_pages(directory: Path, seed: int) -> dict[str, Path]:
    """index, article, tables and gallery pages with their images; name → path."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    images = []
    for number in range(9):
        name = f"photo-{number}.png"
        photo(320, 213, seed * 100 + number).save(directory / name)
        images.append(name)
    photo(860, 320, seed * 100 + 99).save(directory / "banner.png")

    index = (f"<h1>Lucid intranet</h1><p>{paragraph(rng)}</p>"
             f"<figure class='wide'><img src='banner.png' alt=''></figure>"
             + "".join(f"<h2>{sentence(rng, 3)}</h2><p>{paragraph(rng)}</p>" for _ in range(4)))
    article = [f"<h1>{sentence(rng, 6)}</h1>"]
    for section in range(30):
        article.append(f"<h2>{section + 1}. {sentence(rng, 4)}</h2>")
        article += [f"<p>{paragraph(rng)}</p>" for _ in range(rng.randrange(2, 5))]
        if section % 5 == 2:
            article.append(f"<figure class='wide'><img src='{images[section % 9]}' alt=''>"
                           f"<figcaption>{sentence(rng, 8)}</figcaption></figure>")
    header = "".join(f"<th>{h}</th>" for h in
                     ("Id", "Region", "Q1", "Q2", "Q3", "Q4", "Total", "Change"))
    rows = []
    for row in range(400):
        values = [rng.randrange(1000, 99999) for _ in range(4)]
        rows.append(f"<tr><td>{row + 1}</td><td>{rng.choice(WORDS)}</td>"
                    + "".join(f"<td>{v:,}</td>" for v in values)
                    + f"<td>{sum(values):,}</td><td>{rng.uniform(-20, 20):+.1f} %</td></tr>")
    tables = (f"<h1>Quarterly figures</h1><details><summary>Notes</summary>"
              f"<p>{paragraph(rng)}</p></details>"
              f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    gallery = ("<h1>Gallery</h1><div class='grid'>"
               + "".join(f"<figure><img src='{name}' alt=''><figcaption>{sentence(rng, 3)}"
                         f"</figcaption></figure>" for name in images * 3)
               + "</div>")
    bodies = {"index": index, "article": "".join(article), "tables": tables,
              "gallery": gallery}
    paths = {}
    for name in PAGES:
        paths[name] = directory / f"{name}.html"
        paths[name].write_text(_page(name.title(), bodies[name]))
    return paths
