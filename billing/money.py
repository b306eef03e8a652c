"""Money as people read it. Costs are kept to 1e-8 USD (a token can cost far less than a
cent), so a fixed two or four decimals would show a real cost as "$0.00". Every amount the
product shows (pages, emails, error messages) goes through `usd_format`."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

USD_PLACES = 8  # the precision costs and budgets are stored with
SMALLEST = Decimal(1).scaleb(-USD_PLACES)


def usd_format(amount: Decimal | int | float | str | None) -> str:
    """'$1,234.50', '$0.012', '$0.0001', '$0.00000034': at least two decimals, and enough
    to show two significant digits of an amount under a dollar, so a non-zero amount never
    reads as zero; amounts under 1e-8 USD read '<$0.00000001'."""
    try:
        value = Decimal(str(amount)) if amount is not None and not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        return str(amount)
    if value is None or not value.is_finite():
        return "$0.00" if value is None else str(value)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value == 0:
        return "$0.00"
    if value < SMALLEST:
        return f"{sign}<${SMALLEST:.{USD_PLACES}f}"
    places = 2 if value >= 1 else min(USD_PLACES, max(2, 1 - value.adjusted()))
    text = f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,.{places}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{sign}${whole}.{fraction}"


def usd_plain(amount: Decimal | None) -> str:
    """An amount for a form field or an API value: every stored digit, no trailing zeros
    past the cents ('10.00', '0.0001', '0.00000025')."""
    if amount is None:
        return ""
    text = f"{Decimal(amount):.{USD_PLACES}f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
