"""Type stubs of the native module (Rust, PyO3). Use the package's ``streampool.Model``."""

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class Model:
    """One loaded model behind a batching engine; every method releases the GIL."""

    def __init__(
        self,
        model: Optional[str] = None,
        device: str = "auto",
        dtype: str = "auto",
        workers: Optional[int] = None,
        quiet: bool = True,
    ) -> None: ...
    def embed(
        self,
        texts: Union[str, Sequence[str]],
        *,
        prompt: Optional[str] = None,
        prompt_name: Optional[str] = None,
        show_progress_bar: bool = False,
    ) -> npt.NDArray[np.float32]: ...
    def embed_file(
        self,
        path: str,
        output: str,
        format: str = "npy",
        input_format: str = "jsonl",
        field: Optional[str] = None,
        skip_invalid: bool = False,
        npy_dtype: str = "f32",
        workers: Optional[int] = None,
        max_batch_tokens: Optional[int] = None,
        show_progress_bar: bool = False,
    ) -> Tuple[int, int, float]: ...
    @property
    def info(self) -> Tuple[str, int, int, str, str, str, int]: ...
