"""Reading the ``train`` and ``validation`` channels into XGBoost DMatrix objects.

Content types follow the built-in algorithm: LIBSVM (the default when a channel has no
ContentType), CSV (no header, label first, delimiter sniffed per file, ``csv_weights=1`` puts
instance weights in column 1) and Parquet (label first). Every file under the channel folder is
read, recursively and in name order, except names starting with ``.`` or ``_``; gzip files are
recognised by their magic bytes, since File mode hands them over still compressed.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse
import xgboost

from .errors import ClientError, first_line_of, xgboost_message

Format = Literal["libsvm", "csv", "parquet"]
Features = np.ndarray | scipy.sparse.csr_matrix

CHANNELS = ("train", "validation")
_FORMATS: dict[str, Format] = {
    "text/libsvm": "libsvm",
    "text/x-libsvm": "libsvm",
    "libsvm": "libsvm",
    "text/csv": "csv",
    "csv": "csv",
    "application/x-parquet": "parquet",
    "parquet": "parquet",
}
_UNSUPPORTED = ("application/x-recordio-protobuf", "recordio-protobuf")
_GZIP_MAGIC = b"\x1f\x8b"
_CSV_DELIMITERS = ",;\t |"


@dataclasses.dataclass(frozen=True)
class Channel:
    """One input channel as ``inputdataconfig.json`` describes it."""

    name: str
    format: Format
    input_mode: str = "File"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The rows of one channel: features plus label, optional weights and query ids."""

    features: Features
    labels: np.ndarray
    weights: np.ndarray | None = None
    qid: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        rows, columns = self.features.shape
        return int(rows), int(columns)

    def to_dmatrix(self, columns: int, nthread: int | None = None) -> xgboost.DMatrix:
        """Build the DMatrix, widening sparse features to ``columns`` so all channels agree.

        ``nthread`` is the job's own (the hyperparameter): a small matrix built with every
        core's thread costs tens of ms in thread hand-offs alone, more than building it.
        """
        features = self.features
        if scipy.sparse.issparse(features) and features.shape[1] < columns:
            features = scipy.sparse.csr_matrix(
                (features.data, features.indices, features.indptr), shape=(features.shape[0], columns)
            )
        elif features.shape[1] != columns:
            raise ClientError(f"Channels disagree on the number of features: {features.shape[1]} and {columns}")
        try:
            return xgboost.DMatrix(features, label=self.labels, weight=self.weights, qid=self.qid,
                                   missing=np.nan, nthread=nthread)
        except xgboost.core.XGBoostError as e:
            raise ClientError(f"Could not build the training matrix: {xgboost_message(e)}") from e


def parse_channels(data_config: Mapping[str, Any]) -> dict[str, Channel]:
    """Validate ``inputdataconfig.json``: a ``train`` channel, at most ``validation`` besides."""
    extra = sorted(set(data_config) - set(CHANNELS))
    if extra:
        raise ClientError(f"Channel {extra[0]} is not used by the built-in XGBoost algorithm (use train, validation)")
    if "train" not in data_config:
        raise ClientError("The built-in XGBoost algorithm requires a train channel")
    train_type = data_config["train"].get("ContentType")
    channels = {}
    for name, spec in data_config.items():
        mode = spec.get("TrainingInputMode", "File")
        if mode == "Pipe":
            raise ClientError(f"Channel {name}: Pipe input mode is not supported by modelyard; use File or FastFile")
        # The real algorithm parses every channel with the train channel's content type.
        content_type = spec.get("ContentType") or train_type
        channels[name] = Channel(name=name, format=parse_content_type(content_type), input_mode=mode)
    return channels


def parse_content_type(content_type: str | None) -> Format:
    """``text/csv; label_size=1`` -> ``csv``; no content type means LIBSVM."""
    if not content_type:
        return "libsvm"
    media_type, *parameters = (part.strip() for part in content_type.lower().split(";"))
    if media_type in _UNSUPPORTED:
        raise ClientError(
            f"Content type {content_type} is not supported by modelyard; use text/csv, text/libsvm or application/x-parquet"
        )
    if media_type not in _FORMATS:
        raise ClientError(
            f"Content type {content_type} is not supported; use text/csv, text/libsvm or application/x-parquet"
        )
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip() == "label_size" and value.strip() != "1":
            raise ClientError(f"Content type {content_type}: label_size must be 1")
    return _FORMATS[media_type]


def data_files(folder: Path) -> list[Path]:
    """Every non-empty data file under ``folder``, skipping names that start with '.' or '_'."""
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)
        if not hidden and path.is_file() and path.stat().st_size > 0:
            files.append(path)
    return files


def load_channel(channel: Channel, folder: Path, csv_weights: bool = False) -> Dataset:
    """Read all files of one channel into one :class:`Dataset`."""
    files = data_files(folder)
    if not files:
        raise ClientError(f"No data in {channel.name} channel path {folder}")
    loader = {"csv": lambda p: _read_csv(p, csv_weights), "libsvm": _read_libsvm, "parquet": _read_parquet}
    parts = [loader[channel.format](path) for path in files]
    dataset = _concatenate(parts, channel.name)
    if dataset.shape[0] == 0:
        raise ClientError(f"No data in {channel.name} channel path {folder}")
    return dataset


def _concatenate(parts: list[Dataset], channel: str) -> Dataset:
    if len(parts) == 1:
        return parts[0]
    if all(scipy.sparse.issparse(p.features) for p in parts):
        columns = max(p.shape[1] for p in parts)
        features: Features = scipy.sparse.vstack([_widen(p.features, columns) for p in parts], format="csr")
    else:
        widths = {p.shape[1] for p in parts}
        if len(widths) > 1:
            raise ClientError(f"Files of the {channel} channel have different numbers of columns: {sorted(widths)}")
        features = np.concatenate([p.features for p in parts])
    return Dataset(
        features=features,
        labels=np.concatenate([p.labels for p in parts]),
        weights=_concat_optional([p.weights for p in parts], channel, "weights"),
        qid=_concat_optional([p.qid for p in parts], channel, "query ids"),
    )


def _widen(features: scipy.sparse.csr_matrix, columns: int) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix((features.data, features.indices, features.indptr), shape=(features.shape[0], columns))


def _concat_optional(arrays: list[np.ndarray | None], channel: str, what: str) -> np.ndarray | None:
    present = [a is not None for a in arrays]
    if not any(present):
        return None
    if not all(present):
        raise ClientError(f"Some files of the {channel} channel have {what} and others do not")
    return np.concatenate([a for a in arrays if a is not None])


def _open(path: Path) -> io.BufferedIOBase:
    with path.open("rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")  # type: ignore[return-value]


def _first_line(path: Path) -> str:
    with _open(path) as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace").strip("\r\n")
            if line.strip():
                return line
    return ""


def sniff_delimiter(line: str) -> str:
    """The delimiter of one CSV line among , ; TAB space |; ',' when nothing fits."""
    try:
        return csv.Sniffer().sniff(line, delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _read_csv(path: Path, csv_weights: bool) -> Dataset:
    delimiter = sniff_delimiter(_first_line(path))
    # Runs of spaces separate columns in space-delimited files; other delimiters are exact.
    separator = r"\s+" if delimiter == " " else delimiter
    with _open(path) as f:
        try:
            frame = pd.read_csv(f, header=None, sep=separator, dtype=np.float32, engine="c")
        except (ValueError, pd.errors.ParserError) as e:
            raise ClientError(f"Could not read CSV file {path.name}: {first_line_of(e)}") from e
        except pd.errors.EmptyDataError:
            return Dataset(features=np.empty((0, 0), np.float32), labels=np.empty(0, np.float32))
    return _split_columns(frame.to_numpy(), path, csv_weights)


def _read_parquet(path: Path) -> Dataset:
    import pyarrow
    import pyarrow.parquet

    with _open(path) as f:
        try:
            table = pyarrow.parquet.read_table(io.BytesIO(f.read()))
            values = table.to_pandas().to_numpy(dtype=np.float32, na_value=np.nan)
        except (pyarrow.ArrowException, ValueError, TypeError) as e:
            raise ClientError(f"Could not read Parquet file {path.name}: {first_line_of(e)}") from e
    return _split_columns(values, path, csv_weights=False)


def _split_columns(values: np.ndarray, path: Path, csv_weights: bool) -> Dataset:
    first_feature = 2 if csv_weights else 1
    if values.ndim != 2 or values.shape[1] < first_feature:
        raise ClientError(f"File {path.name} needs a label column{' and a weight column' if csv_weights else ''}")
    labels = values[:, 0]
    if np.isnan(labels).any():
        raise ClientError(f"File {path.name} has rows without a label in the first column")
    weights = values[:, 1] if csv_weights else None
    if weights is not None and not (weights >= 0).all():
        raise ClientError(f"File {path.name} has missing or negative instance weights in column 1 (csv_weights=1)")
    return Dataset(
        features=np.ascontiguousarray(values[:, first_feature:]),
        labels=np.ascontiguousarray(labels),
        weights=None if weights is None else np.ascontiguousarray(weights),
    )


# A first token holding ':' is "label:weight"; sklearn's fast parser does not know that form.
_WEIGHTED_LABEL = re.compile(rb"(?m)^[ \t]*[^\s:#]+:")


def _read_libsvm(path: Path) -> Dataset:
    from sklearn.datasets import load_svmlight_file

    with _open(path) as f:
        content = f.read()
    weights = None
    if _WEIGHTED_LABEL.search(content):
        content, weights = _strip_weights(content)
    has_qid = b"qid:" in content
    try:
        loaded = load_svmlight_file(io.BytesIO(content), dtype=np.float32, zero_based=True, query_id=has_qid)
    except ValueError as e:
        raise ClientError(f"Could not read LIBSVM file {path.name}: {first_line_of(e)}") from e
    features, labels = loaded[0], loaded[1]
    return Dataset(
        features=features.tocsr(),
        labels=labels.astype(np.float32),
        weights=weights,
        qid=loaded[2] if has_qid else None,
    )


def _strip_weights(content: bytes) -> tuple[bytes, np.ndarray]:
    lines, weights = [], []
    for line in _data_lines(content):
        head, *rest = line.split(None, 1)
        label, _, weight = head.partition(b":")
        weights.append(float(weight) if weight else 1.0)
        lines.append(b" ".join([label, *rest]))
    return b"\n".join(lines) + b"\n", np.asarray(weights, dtype=np.float32)


def _data_lines(content: bytes) -> Iterator[bytes]:
    # Mirrors what sklearn's parser skips, so weights stay aligned with rows.
    for raw in content.splitlines():
        line = raw.split(b"#", 1)[0].strip()
        if line:
            yield line
