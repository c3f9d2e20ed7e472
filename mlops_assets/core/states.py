"""US state names as the realtor data spells them, and their postal abbreviations."""

from __future__ import annotations

STATE_ABBREVIATIONS: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "VI": "Virgin Islands", "GU": "Guam",
}  # fmt: skip

STATE_NAMES: tuple[str, ...] = tuple(STATE_ABBREVIATIONS.values())

_BY_LOWER: dict[str, str] = {name.lower(): name for name in STATE_NAMES}
_BY_LOWER.update({abbr.lower(): name for abbr, name in STATE_ABBREVIATIONS.items()})
_BY_LOWER.update({"washington dc": "District of Columbia", "us virgin islands": "Virgin Islands"})


def normalize_state(value: object) -> str | None:
    """Map a spelling ('tx', ' Texas ', 'TEXAS') to the canonical name; None if unknown."""
    if not isinstance(value, str):
        return None
    return _BY_LOWER.get(" ".join(value.split()).lower())
