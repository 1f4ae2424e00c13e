"""The run folder's format: file names, statuses, events, requests, and their JSON codec.

A run folder is the interface between a run and its viewers. The run process (the
built-in trainer, a user's script through `steplr_tui.track`, rank 0 of a DDP job)
is the only writer of `events.jsonl`, `metrics.jsonl`, `status.json`,
`config.json` and `checkpoint.pt`. Viewers and the shell append requests to
`control.jsonl`; the run records its decision on each of them in `events.jsonl`.
Everything a viewer draws comes from `events.jsonl`, so a dashboard in another
terminal, or one opened after the run ended, sees what a dashboard in the run's
own process sees.

This module is the format's one definition (the README documents it for other
tools). It imports neither torch nor Textual: both sides of the folder use it.
"""

from steplr_tui.runfolder.codec import FormatError, as_float32, dumps, pack_losses, unpack_losses
from steplr_tui.runfolder.events import (
    BatchProgress,
    Decided,
    Decision,
    EpochEnd,
    Event,
    LrPlan,
    Notice,
    RunEnded,
    RunOpened,
    RunStarted,
    decode_event,
    encode_event,
    epoch_report,
)
from steplr_tui.runfolder.files import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CONTROL_FILE,
    DATASET_CHOICE,
    EDIT_FIELDS,
    EVENTS_FILE,
    FORMAT_VERSION,
    LIVE_FIELDS,
    MAX_POLL_BYTES,
    MAX_REQUEST_BYTES,
    METRICS_FILE,
    OUTPUT_FILE,
    STATUS_FILE,
    LineTail,
    append_line,
    file_size,
    write_atomic,
)
from steplr_tui.runfolder.requests import (
    EditRequest,
    Request,
    RequestError,
    StopRequest,
    WithdrawRequest,
    decode_request,
    encode_request,
    new_request_id,
    sender_name,
)
from steplr_tui.runfolder.status import Status

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "CONTROL_FILE",
    "DATASET_CHOICE",
    "EDIT_FIELDS",
    "EVENTS_FILE",
    "FORMAT_VERSION",
    "LIVE_FIELDS",
    "MAX_POLL_BYTES",
    "MAX_REQUEST_BYTES",
    "METRICS_FILE",
    "OUTPUT_FILE",
    "STATUS_FILE",
    "BatchProgress",
    "Decided",
    "Decision",
    "EditRequest",
    "EpochEnd",
    "Event",
    "FormatError",
    "LineTail",
    "LrPlan",
    "Notice",
    "Request",
    "RequestError",
    "RunEnded",
    "RunOpened",
    "RunStarted",
    "Status",
    "StopRequest",
    "WithdrawRequest",
    "append_line",
    "as_float32",
    "decode_event",
    "decode_request",
    "dumps",
    "encode_event",
    "encode_request",
    "epoch_report",
    "file_size",
    "new_request_id",
    "pack_losses",
    "sender_name",
    "unpack_losses",
    "write_atomic",
]
