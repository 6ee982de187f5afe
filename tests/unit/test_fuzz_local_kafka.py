"""The local broker's generated cluster id, over every random draw it can get."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from runtime.devtools.local_kafka.broker import _cluster_id

UUID_BYTES = st.binary(min_size=16, max_size=16)


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@given(st.lists(UUID_BYTES | st.just(b"\xf8" + bytes(15)), min_size=1, max_size=5))
def test_a_cluster_id_is_the_first_draw_that_does_not_look_like_an_option(
    draws: list[bytes],
) -> None:
    """kafka-storage reads an id starting with "-" as an option and refuses to format."""
    source = iter([*draws, bytes(16)])  # the last draw encodes as "AAAA...": always usable
    cluster_id = _cluster_id(lambda: next(source))
    expected = next(_encoded(d) for d in [*draws, bytes(16)] if not _encoded(d).startswith("-"))
    assert cluster_id == expected
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_an_id_starting_with_a_dash_is_drawn_again() -> None:
    dash = b"\xf8" + bytes(15)
    assert _encoded(dash).startswith("-")
    draws = iter([dash, bytes(16)])
    assert _cluster_id(lambda: next(draws)) == _encoded(bytes(16))
