"""Pictures in any terminal: Kitty graphics or Sixel where the terminal supports them
(textual-image detects it, tmux passthrough included), else half-block Unicode colour that
works over plain SSH. TUIGEN_IMAGES=auto|kitty|sixel|halfcell|unicode forces one.

A `Picture` fills its pane: it is drawn at the largest size that fits and keeps the image's
aspect, in every protocol, and redrawn when the pane is resized. We scale the pixels
ourselves to exactly the dots the protocol draws (textual-image took the image's pixel size
as if every terminal had Kitty's real pixels, so small images shrank to a few cells in
half-blocks): smaller images are enlarged nearest-neighbour, so 28 px digits stay crisp,
larger ones are reduced with LANCZOS. Kitty and Sixel are then drawn by textual-image at
exactly that size; half-blocks and plain Unicode by the small widgets here. `fit=False` draws
one image pixel per dot (1:1), scrollable when it is larger than the pane."""
from __future__ import annotations

from math import ceil

from PIL import Image as PILImage
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.containers import ScrollableContainer
from textual.events import Resize
from textual.strip import Strip
from textual.widget import Widget

from ...settings import image_protocol

TEXT_CELL_ASPECT = (1, 2)  # a character cell is about twice as tall as wide


def chosen_protocol(protocol: str | None = None) -> str:
    """The protocol asked for (argument, then TUIGEN_IMAGES), with "auto" resolved to what
    textual-image detected for this terminal."""
    protocol = protocol or image_protocol()
    if protocol != "auto":
        return protocol
    from textual_image import renderable as r

    return {r.TGPImage: "kitty", r.SixelImage: "sixel", r.HalfcellImage: "halfcell"}.get(r.Image, "unicode")


def ask_terminal(protocol: str | None = None) -> None:
    """Learn what this terminal draws and its cell size, before the app starts. textual-image
    asks the terminal with escape sequences when it is imported and reads the answers from
    stdin; once Textual reads stdin those answers arrive as key presses (they opened the help
    screen). Half-blocks and plain Unicode are drawn here without it: nothing to ask."""
    if (protocol or image_protocol()) not in ("halfcell", "unicode"):
        import textual_image.widget  # noqa: F401  detects Kitty / Sixel and measures the cell, now


def picture_class(protocol: str | None = None):
    """The widget class that draws pixels in `protocol` (already scaled to its dots)."""
    protocol = chosen_protocol(protocol)
    if protocol == "halfcell":
        return HalfBlocks
    if protocol == "unicode":
        return Shades
    from textual_image import widget as w

    return w.TGPImage if protocol == "kitty" else w.SixelImage


class _TextDots(Widget):
    """Pixels drawn with characters, one cell for `DOTS` pixels; `image` is already scaled."""

    DOTS = (1, 1)

    def __init__(self, image: PILImage.Image):
        super().__init__()
        self.image = image

    @property
    def image(self) -> PILImage.Image:
        return self._image

    @image.setter
    def image(self, image: PILImage.Image) -> None:
        self._image = image
        self._strips = self.strips(image)
        self.refresh(layout=True)

    def render_line(self, y: int) -> Strip:
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)


class HalfBlocks(_TextDots):
    """Two pixels a cell: the upper half block in the top pixel's colour on the bottom's."""

    DOTS = (1, 2)

    @staticmethod
    def strips(image: PILImage.Image) -> list[Strip]:
        rgb = image.convert("RGB")
        w, h = rgb.size
        px = rgb.load()
        strips = []
        for y in range(0, h, 2):
            strips.append(Strip([Segment("\u2580", Style(color=Color.from_rgb(*px[x, y]),
                                                         bgcolor=Color.from_rgb(*px[x, min(y + 1, h - 1)])))
                                 for x in range(w)], w))
        return strips


class Shades(_TextDots):
    """One pixel a cell in shades of grey (no colour): for terminals with nothing else."""

    CHARS = "\u2588\u2593\u2592\u2591 "  # bright pixels are full blocks (a dark background)

    @classmethod
    def strips(cls, image: PILImage.Image) -> list[Strip]:
        grey = image.convert("L")
        w, h = grey.size
        px = grey.load()
        return [Strip([Segment("".join(cls.CHARS[min(4, (255 - px[x, y]) * 5 // 256)] for x in range(w)))], w)
                for y in range(h)]


def cell_geometry(protocol: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(dots per cell, the cell's shape as width:height) for a resolved protocol. Half-blocks
    draw 1x2 dots a cell, plain Unicode 1x1, Kitty and Sixel the cell's real pixels."""
    if protocol in ("kitty", "sixel"):
        from textual_image._terminal import get_cell_size  # cached; measured before the app started

        size = get_cell_size()
        return (size.width, size.height), (size.width, size.height)
    return picture_class(protocol).DOTS, TEXT_CELL_ASPECT


def fitted_cells(image: tuple[int, int], pane: tuple[int, int], cell_aspect: tuple[int, int]) -> tuple[int, int]:
    """The largest (columns, rows) inside `pane` that shows `image` (w, h pixels) undistorted."""
    (iw, ih), (pw, ph), (cw, ch) = image, pane, cell_aspect
    scale = min(pw * cw / iw, ph * ch / ih)  # cell-shape units per image pixel
    return max(1, min(pw, int(iw * scale / cw))), max(1, min(ph, int(ih * scale / ch)))


def natural_cells(image: tuple[int, int], dots: tuple[int, int]) -> tuple[int, int]:
    """(columns, rows) that draw one image pixel per dot: 1:1."""
    return ceil(image[0] / dots[0]), ceil(image[1] / dots[1])


def scaled_to(image: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
    """Enlarge nearest-neighbour (pixels stay sharp), reduce with LANCZOS (no aliasing)."""
    if image.size == size:
        return image
    enlarging = size[0] >= image.width and size[1] >= image.height
    return image.resize(size, PILImage.Resampling.NEAREST if enlarging else PILImage.Resampling.LANCZOS)


class Picture(ScrollableContainer):
    """One image, drawn to fill this widget's area (`fit`) or at 1:1."""

    DEFAULT_CSS = """
    Picture { width: 1fr; height: 1fr; align: center middle; overflow: hidden hidden; }
    Picture.one-to-one { overflow: auto auto; }
    """

    def __init__(self, image: PILImage.Image, fit: bool = True, protocol: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.source = image.convert("RGB") if image.mode not in ("RGB", "L") else image
        self.protocol = chosen_protocol(protocol)
        self.drawn_cells: tuple[int, int] | None = None  # what is on screen now (tests read it)
        self.drawing = None  # the widget that draws the pixels, made once the size is known
        self.set_fit(fit)

    def on_resize(self, event: Resize) -> None:
        self.redraw()

    def set_fit(self, fit: bool) -> None:
        self.fit = fit
        self.can_focus = not fit  # 1:1 may be larger than the pane: focus it to scroll by keys
        self.set_class(not fit, "one-to-one")
        if self.is_mounted:
            self.redraw()

    def redraw(self) -> None:
        pane = (self.content_size.width, self.content_size.height)
        if min(pane) <= 0:
            return  # not laid out yet; the first Resize brings the size
        dots, aspect = cell_geometry(self.protocol)
        cells = fitted_cells(self.source.size, pane, aspect) if self.fit else natural_cells(self.source.size, dots)
        if cells == self.drawn_cells:
            return
        self.drawn_cells = cells
        pixels = scaled_to(self.source, (cells[0] * dots[0], cells[1] * dots[1]))
        if self.drawing is None:
            self.drawing = picture_class(self.protocol)(pixels)
            self.mount(self.drawing)
        else:
            self.drawing.image = pixels
        self.drawing.styles.width, self.drawing.styles.height = cells
