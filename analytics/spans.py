"""Enrollment spans: on which days a subject held each enrolled factor.

SQL shared by the adoption query (``analytics.queries.adoption``) and its rollup
(``analytics.rollups``), so that both count an enrollment the same way: it is held from the
day of its first ``mfa.enrollment.completed`` until the day before its first
``mfa.enrollment.removed``. Whether it is held at the end of a day depends only on the
enrollment events of that day and the days before it.
"""

from __future__ import annotations


def spans(enrollments: str, where: str = "true") -> str:
    """SQL: one row per enrollment in ``enrollments`` (a table expression of the
    ``enrollments`` table's columns, ``date`` included) among the rows ``where`` keeps:
    ``tenant``, ``subject``, ``factor``, ``enrollment_id``, ``enrolled_on`` (null if never
    completed) and ``removed_on`` (null if never removed)."""
    return f"""
        SELECT tenant, subject, factor, enrollment_id,
            min(date) FILTER (WHERE status = 'completed') AS enrolled_on,
            min(date) FILTER (WHERE status = 'removed') AS removed_on
        FROM {enrollments}
        WHERE status IN ('completed', 'removed') AND {where}
        GROUP BY ALL"""  # noqa: S608 - table expressions and conditions of our own


def held_days(month: str, span: str) -> str:
    """SQL: the days of the month starting on ``month`` (a ``DATE`` expression) on which the
    enrollment ``span`` (a row of :func:`spans`) is held, as bits (bit 0 for the first)."""
    first = f"greatest(0, date_diff('day', {month}, {span}.enrolled_on))"
    stop = (
        f"CASE WHEN {span}.removed_on IS NULL THEN 31 "
        f"ELSE least(31, greatest(0, date_diff('day', {month}, {span}.removed_on))) END"
    )
    return (
        f"CASE WHEN {first} < {stop} THEN (1::UBIGINT << {stop}) - (1::UBIGINT << {first}) "
        "ELSE 0::UBIGINT END"
    )
