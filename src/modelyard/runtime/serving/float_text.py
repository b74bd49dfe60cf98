"""float32 predictions as text: ``str()`` of every value, for a whole array at once.

Batch transform answers a million predictions a job, and numpy's ``str`` of one float32 costs
about 0.7 µs. :func:`float32_text` finds each value's shortest round-tripping decimal with
array operations instead (the closest one when several are as short, ties to the even digit,
as numpy's Dragon4 does) and writes exactly the bytes ``str()`` would.
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: magnitudes that str() writes positionally ("0.00123", "4567.5": numpy's limits exactly, a
#: float32 is never 1e-4 or 1e6 itself) and in scientific form ("2.5e-07", "1.25e+08") where
#: the exact powers of ten of a double can scale them; 0, NaN, infinities and the rest take
#: str(); doubles, because numpy would compare a float32 array with 1e-4 rounded to float32
_POSITIONAL = (np.float64(1e-4), np.float64(1e6))
_SCIENTIFIC = ((np.float64(1e-12), np.float64(1e-4)), (np.float64(1e6), np.float64(1e13)))
_POWERS = 10.0 ** np.arange(23)  # exact doubles
_INT_POWERS = 10 ** np.arange(19, dtype=np.int64)
_SPACINGS = _POWERS[:11]
_PLACES = 13  # digits of the longest text: "0.000234567891"


def float32_text(array: np.ndarray) -> bytes:
    """``str()`` of every value of a 1-D or 2-D float32 array, a row's values joined by ``,``
    and each row ended by a newline: :func:`array_to_csv`'s text, about twice as fast.

    numpy's str of a float32 is the shortest decimal that reads back as the same float32 (the
    closest one when several are as short). :func:`_shortest_decimals` finds it for the whole
    array at once; the values outside the ranges above, and the few whose answer double
    rounding could blur, are written by ``str()`` itself.
    """
    values = array.ravel()
    columns = array.shape[1] if array.ndim == 2 else 1
    magnitudes = np.abs(values)
    with np.errstate(invalid="ignore"):  # NaN compares false: str() writes it
        scientific = np.zeros(values.size, bool)
        for low, high in _SCIENTIFIC:
            scientific |= (magnitudes >= low) & (magnitudes < high)
        fast = np.flatnonzero(
            scientific | ((magnitudes >= _POSITIONAL[0]) & (magnitudes < _POSITIONAL[1]))
        )
    digits, scale, sure = _shortest_decimals(magnitudes[fast])
    fast, digits, scale = fast[sure], digits[sure], scale[sure]
    ends = np.where(fast % columns == columns - 1, ord("\n"), ord(",")).astype(np.uint8)
    rest = np.ones(values.size, bool)
    rest[fast] = False
    others = {}
    for i in np.flatnonzero(rest).tolist():
        others[i] = (str(values[i]) + ("\n" if i % columns == columns - 1 else ",")).encode()
    decimals = _Decimals(values[fast] < 0, digits, scale, scientific[fast], ends)
    return _text(values.size, fast, decimals, others)


def _shortest_decimals(magnitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(digits, scale, sure)``: each float32 is read back from ``digits / 10**scale``, the
    shortest such decimal and the closest of those (an exact tie: the even one, as numpy);
    ``sure`` is False where doubles cannot tell (below 1e10, under 1 value in 10,000)."""
    x = magnitudes.astype(np.float64)
    below = np.nextafter(magnitudes, np.float32(0)).astype(np.float64)
    above = np.nextafter(magnitudes, np.float32(np.inf)).astype(np.float64)
    # x * 10**k has 10 digits before the point, more than any float32 needs
    k = 9 - np.floor(np.log10(x)).astype(np.int64)
    factor = np.where(k >= 0, _POWERS[np.clip(k, 0, 22)], 1 / _POWERS[np.clip(-k, 0, 22)])
    scaled = x * factor
    # the decimals that read back as x lie between the midpoints to its neighbours, the ends
    # included when x's last bit is even (round half to even)
    low, high = (x + below) * 0.5 * factor, (x + above) * 0.5 * factor
    # for 0 <= k <= 12 all of these are exact (25 bits times 5**k); else allow for rounding
    exact = (k >= 0) & (k <= 12)
    closed = exact & ((magnitudes.view(np.uint32) & 1) == 0)
    slack = np.where(exact, 0.0, scaled * 2.0**-40)

    def inside(value: np.ndarray) -> np.ndarray:
        return (((value > low + slack) | (closed & (value == low)))
                & ((value < high - slack) | (closed & (value == high))))

    def blurred(value: np.ndarray) -> np.ndarray:
        return ~exact & ((np.abs(value - low) <= slack) | (np.abs(value - high) <= slack))

    # the widest spacing 10**j with a multiple between low and high: the shortest decimals
    # (exact where the ends are; else a guess, which the checks below catch when wrong)
    j = np.zeros(x.size, np.int64)
    rows = np.arange(x.size)  # those with a multiple of every spacing so far
    for spacing in _SPACINGS[1:]:
        high_steps, low_steps = high[rows] / spacing, low[rows] / spacing
        top_step, low_step = np.floor(high_steps), np.floor(low_steps)
        ends = closed[rows]
        within = (top_step - low_step + (ends & (low_step == low_steps))
                  - (~ends & (top_step == high_steps))) > 0
        rows = rows[within]
        j[rows] += 1
        if not rows.size:
            break
    step = _SPACINGS[np.clip(j, 0, 9)]
    down = np.floor(scaled / step)
    up = down + 1
    gap_down, gap_up = scaled - down * step, up * step - scaled
    inside_down, inside_up = inside(down * step), inside(up * step)
    both = inside_down & inside_up
    tie = both & exact & (gap_down == gap_up)
    pick_up = np.where(tie, down % 2 == 1, inside_up & (~inside_down | (gap_up < gap_down)))
    digits = np.where(pick_up, up, down)
    wider = step * 10
    top = np.floor(high / wider) * wider  # or one wider step above it, if the division rounded
    sure = (
        (inside_down | inside_up) & (j >= 1) & (j <= 9)  # a float32 needs at most 9 digits
        & (np.abs(k) <= 22)  # factor exact, or one rounding of an exact power
        & ~inside(top) & ~inside(top - wider)  # no shorter decimal
        & ~blurred(down * step) & ~blurred(up * step) & ~blurred(top) & ~blurred(top - wider)
        & (tie | exact | ~(both & (np.abs(gap_down - gap_up) <= slack)))
    )
    return digits.astype(np.int64), k - j, sure


@dataclasses.dataclass
class _Decimals:
    """What :func:`_text` writes for the values it writes: ``digits / 10**scale``."""

    negative: np.ndarray
    digits: np.ndarray
    scale: np.ndarray
    scientific: np.ndarray
    ends: np.ndarray  # the byte after each value: "," or "\n"
    width: int = 0  # of the longest text, once layouts() has run

    def trim(self) -> None:
        """Trailing zeros off: all of them in scientific form, down to one decimal else."""
        for _ in range(_PLACES):
            zero = (self.digits % 10 == 0) & ((self.scale > 1) | self.scientific)
            if not zero.any():
                break
            self.digits = np.where(zero, self.digits // 10, self.digits)
            self.scale = np.where(zero, self.scale - 1, self.scale)
        # a positional whole number keeps one decimal: 500 is digits 5, scale -2 -> "500.0"
        whole = (self.scale <= 0) & ~self.scientific
        self.digits = np.where(whole, self.digits * _INT_POWERS[np.clip(1 - self.scale, 0, 18)],
                               self.digits)
        self.scale = np.where(whole, 1, self.scale)

    def layouts(self) -> np.ndarray:
        """One number per text shape: sign, digits before and after the point, and in
        scientific form the exponent (its digits all come after the first)."""
        count = 1 + np.searchsorted(_INT_POWERS[1:14], self.digits, side="right")
        exponent = count - 1 - self.scale
        before = np.where(self.scientific, 1, count - self.scale)
        after = np.where(self.scientific, count - 1, self.scale)
        before = np.maximum(before, 1)  # "0.0012": one digit, the 0, before the point
        kind = np.where(self.scientific, 128 + exponent, 0)  # exponents of float32: -45..38
        self.width = int(np.max(self.negative + before + after + 2 + 4 * self.scientific,
                                initial=0))  # with the point, "e-07" and the end
        return ((kind * 2 + self.negative) * 32 + before) * 32 + after


def _text(size: int, fast: np.ndarray, decimals: _Decimals, others: dict[int, bytes]) -> bytes:
    """Every value's text and end: ``decimals`` for ``fast``, ``others`` for the rest; built
    as one byte matrix, one text shape at a time."""
    decimals.trim()
    layouts = decimals.layouts()
    width = max([decimals.width] + [len(text) for text in others.values()])
    text = np.zeros((size, width), np.uint8)
    places = _ascii_digits(decimals.digits)
    for layout in np.unique(layouts).tolist():
        rows = np.flatnonzero(layouts == layout)
        kind_sign, shape = divmod(layout, 32 * 32)
        kind, sign = divmod(kind_sign, 2)
        before, after = divmod(shape, 32)
        point = "." if after or not kind else ""
        suffix = f"e{kind - 128:+03d}" if kind else ""
        block = np.empty((rows.size, sign + before + len(point) + after + len(suffix) + 1),
                         np.uint8)
        block[:, :sign] = ord("-")
        block[:, sign : sign + before] = places[rows, _PLACES - before - after : _PLACES - after]
        at = sign + before
        block[:, at : at + len(point)] = np.frombuffer(point.encode(), np.uint8)
        at += len(point)
        block[:, at : at + after] = places[rows, _PLACES - after :]
        block[:, at + after : -1] = np.frombuffer(suffix.encode(), np.uint8)
        block[:, -1] = decimals.ends[rows]
        text[fast[rows], : block.shape[1]] = block
    for i, piece in others.items():
        text[i, : len(piece)] = np.frombuffer(piece, np.uint8)
    return text[text != 0].tobytes()


def _ascii_digits(numbers: np.ndarray) -> np.ndarray:
    """Each number's last ``_PLACES`` decimal digits, zero-padded, as ASCII (a row each)."""
    places = np.empty((numbers.size, _PLACES), np.uint8)
    rest = numbers
    for column in range(_PLACES - 1, -1, -1):  # a scalar divisor: numpy divides fast
        rest, places[:, column] = np.divmod(rest, 10)
    places += ord("0")
    return places
