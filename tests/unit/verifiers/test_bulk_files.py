"""Invitation lists and subject maps read as an attacker would write them."""

from __future__ import annotations

import io

import pytest

from verifiers.bulk_files import BulkFileError, Invitee, read_invitees, read_subject_map, reasons


@pytest.mark.parametrize(
    "text",
    [
        b"account,subject\na,u-1\na,u-2\n",  # an account mapped twice
        b"account,subject\na,=cmd\n",  # a subject no event may carry
        b"account\na\n",  # no subject column
        b"account,subject\na\n",  # a short row
    ],
)
def test_a_bad_subject_map_is_refused_whole(text: bytes) -> None:
    with pytest.raises(BulkFileError):
        read_subject_map(io.BytesIO(text))


def test_an_invitation_file_reads_subjects_and_refuses_repeats_after_the_first() -> None:
    rows = read_invitees(io.BytesIO(b"\xef\xbb\xbfsubject,name\nu-1,A\nu-2,B\nu-1,A\n=x,C\n"))
    assert rows[:2] == [Invitee(2, "u-1"), Invitee(3, "u-2")]
    assert [r.reason for r in rows[2:]] == ["duplicate_subject", "formula_subject"]  # type: ignore[union-attr]
    assert reasons(rows) == {"duplicate_subject": 1, "formula_subject": 1}
    with pytest.raises(BulkFileError):
        read_invitees(io.BytesIO(b""))
