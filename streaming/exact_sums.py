"""Sums and means of a window that do not depend on how its events were split into micro-batches.

Adding doubles is not associative: ``(0.1 + 0.2) + 0.3`` is ``0.6000000000000001`` but ``0.1 + (0.2 + 0.3)`` is
``0.6``. Spark adds a window's values in the order the micro-batches (and their tasks) bring them, so a job that
read its input in other batches (after a restart from its checkpoint, with another rate limit, or simply with its
records spread over the partitions differently) would write a mean that differs from an uninterrupted run's in
its last digits. Here each value is rounded once, on its own row, to a decimal with :data:`SCALE` digits after the
point (the same result whatever the batching), and the decimals are added exactly, so any order gives the same
sum; the result becomes a double again at the end. Twelve decimals are far finer than any sensor measures.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

SCALE = 12
# Values up to 10^18 with 12 decimals; Spark sums them as decimal(38, 12), exact up to 10^26.
EXACT = T.DecimalType(30, SCALE)


def as_exact(column: Column | str) -> Column:
    """``column``'s value on each row rounded to :data:`SCALE` decimals."""
    return (F.col(column) if isinstance(column, str) else column).cast(EXACT)


def exact_sum(column: Column | str) -> Column:
    """The sum of ``column`` as a decimal (nulls skipped; null when every value is null), exact in any order."""
    return F.sum(as_exact(column))


def exact_mean(column: Column | str) -> Column:
    """The mean of ``column`` (nulls skipped), a double that is the same in any order of the values."""
    return F.avg(as_exact(column)).cast("double")


def exact_ratio(numerator_sum: Column, denominator_sum: Column) -> Column:
    """``numerator_sum / denominator_sum`` as a double, null when the denominator is null or 0."""
    return F.try_divide(numerator_sum, denominator_sum).cast("double")
