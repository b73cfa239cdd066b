"""Derive the policy pack's reference tables from the 2026 eCFR snapshot, with 2020 dating.

Run from the repository root:

    python policies/shared/data/generate.py [/path/to/us-export-controls-2026]

Input: the seelpeed-debug/export-controls-agent-mcp JSON files (MIT License) as copied to
/work/shared/data/us-export-controls-2026/ (eCFR issue of 2026-07-23). They are read only
here, at generation time; the policies read the JSON files this script writes, never the input.

Output (beside this script), in the table format of docs/language.md section 5:
  country-groups.json         Country -> set of CountryGroup   (Supp. 1 to part 740)
  cc-columns.json             Country -> set of CcColumn       (CC columns of Supp. 1 to part 738)
  crime-control-eccns.json    string  -> string                (ECCNs whose licence requirement is 742.7(a))
  short-supply-eccns.json     string  -> string                (ECCNs controlled for short supply, 742.1(b)(1))
  countries.txt               the Country enumeration, for the vocabulary

Every date below that is not in the 2026 snapshot is written out by hand in DATED_GROUPS and
the ECCN lists, with its source, so the dating is reviewable in one place. README.md explains
each choice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_INPUT = Path("/work/shared/data/us-export-controls-2026")
SNAPSHOT = "eCFR issue of 2026-07-23 via seelpeed-debug/export-controls-agent-mcp (MIT)"

# Names used in the snapshot (Country Chart rows and Country Group lists) -> ISO 3166-1 alpha-2.
# Kosovo has no ISO code; XK is the user-assigned code in common use (EU, IMF, SWIFT).
ISO = {
    "Afghanistan": "AF",
    "Albania": "AL",
    "Algeria": "DZ",
    "Andorra": "AD",
    "Angola": "AO",
    "Antigua and Barbuda": "AG",
    "Argentina": "AR",
    "Armenia": "AM",
    "Aruba": "AW",
    "Australia": "AU",
    "Austria": "AT",
    "Azerbaijan": "AZ",
    "Bahamas, The": "BS",
    "The Bahamas": "BS",
    "Bahrain": "BH",
    "Bangladesh": "BD",
    "Barbados": "BB",
    "Belarus": "BY",
    "Belgium": "BE",
    "Belize": "BZ",
    "Benin": "BJ",
    "Bhutan": "BT",
    "Bolivia": "BO",
    "Bosnia and Herzegovina": "BA",
    "Bosnia & Herzegovina": "BA",
    "Botswana": "BW",
    "Brazil": "BR",
    "Brunei": "BN",
    "Bulgaria": "BG",
    "Burkina Faso": "BF",
    "Burma": "MM",
    "Burundi": "BI",
    "Cambodia": "KH",
    "Cameroon": "CM",
    "Canada": "CA",
    "Cape Verde": "CV",
    "Central African Republic": "CF",
    "Chad": "TD",
    "Chile": "CL",
    "China": "CN",
    "China (PRC)": "CN",
    "Colombia": "CO",
    "Comoros": "KM",
    "Congo (Democratic Republic of the)": "CD",
    "Congo (Democratic Republic of)": "CD",
    "Congo (Republic of the)": "CG",
    "Costa Rica": "CR",
    "Cote d'Ivoire": "CI",
    "Cote d'lvoire": "CI",
    "Croatia": "HR",
    "Cuba": "CU",
    "Curaçao": "CW",
    "Cyprus": "CY",
    "Czech Republic": "CZ",
    "Denmark": "DK",
    "Djibouti": "DJ",
    "Dominica": "DM",
    "Dominican Republic": "DO",
    "Ecuador": "EC",
    "Egypt": "EG",
    "El Salvador": "SV",
    "Equatorial Guinea": "GQ",
    "Eritrea": "ER",
    "Estonia": "EE",
    "Eswatini": "SZ",
    "Ethiopia": "ET",
    "Fiji": "FJ",
    "Finland": "FI",
    "France": "FR",
    "Gabon": "GA",
    "Gambia, The": "GM",
    "Georgia": "GE",
    "Germany": "DE",
    "Ghana": "GH",
    "Greece": "GR",
    "Grenada": "GD",
    "Guatemala": "GT",
    "Guinea": "GN",
    "Guinea-Bissau": "GW",
    "Guyana": "GY",
    "Haiti": "HT",
    "Honduras": "HN",
    "Hungary": "HU",
    "Iceland": "IS",
    "India": "IN",
    "Indonesia": "ID",
    "Iran": "IR",
    "Iraq": "IQ",
    "Ireland": "IE",
    "Israel": "IL",
    "Italy": "IT",
    "Jamaica": "JM",
    "Japan": "JP",
    "Jordan": "JO",
    "Kazakhstan": "KZ",
    "Kenya": "KE",
    "Kiribati": "KI",
    "Korea, North": "KP",
    "Korea, South": "KR",
    "Kosovo": "XK",
    "Kuwait": "KW",
    "Kyrgyzstan": "KG",
    "Laos": "LA",
    "Latvia": "LV",
    "Lebanon": "LB",
    "Lesotho": "LS",
    "Liberia": "LR",
    "Libya": "LY",
    "Liechtenstein": "LI",
    "Lithuania": "LT",
    "Luxembourg": "LU",
    "Macau": "MO",
    "Madagascar": "MG",
    "Malawi": "MW",
    "Malaysia": "MY",
    "Maldives": "MV",
    "Mali": "ML",
    "Malta": "MT",
    "Marshall Islands": "MH",
    "Mauritania": "MR",
    "Mauritius": "MU",
    "Mexico": "MX",
    "Micronesia (Federated State of)": "FM",
    "Micronesia, Federated States of": "FM",
    "Moldova": "MD",
    "Monaco": "MC",
    "Mongolia": "MN",
    "Montenegro": "ME",
    "Morocco": "MA",
    "Mozambique": "MZ",
    "Namibia": "NA",
    "Nauru": "NR",
    "Nepal": "NP",
    "Netherlands": "NL",
    "New Zealand": "NZ",
    "Nicaragua": "NI",
    "Niger": "NE",
    "Nigeria": "NG",
    "North Macedonia": "MK",
    "Norway": "NO",
    "Oman": "OM",
    "Pakistan": "PK",
    "Palau": "PW",
    "Panama": "PA",
    "Papua New Guinea": "PG",
    "Paraguay": "PY",
    "Peru": "PE",
    "Philippines": "PH",
    "Poland": "PL",
    "Portugal": "PT",
    "Qatar": "QA",
    "Romania": "RO",
    "Russia": "RU",
    "Rwanda": "RW",
    "Samoa": "WS",
    "San Marino": "SM",
    "Sao Tome and Principe": "ST",
    "Sao Tome & Principe": "ST",
    "Saudi Arabia": "SA",
    "Senegal": "SN",
    "Serbia": "RS",
    "Seycheles": "SC",
    "Seychelles": "SC",
    "Sierra Leone": "SL",
    "Singapore": "SG",
    "Sint Maarten (the Dutch two-fifths of the island of Saint Martin)": "SX",
    "Slovakia": "SK",
    "Slovenia": "SI",
    "Solomon Islands": "SB",
    "Somalia": "SO",
    "South Africa": "ZA",
    "South Sudan, Republic of": "SS",
    "Spain": "ES",
    "Sri Lanka": "LK",
    "St. Kitts and Nevis": "KN",
    "Saint Kitts & Nevis": "KN",
    "St. Lucia": "LC",
    "Saint Lucia": "LC",
    "St. Vincent and the Grenadines": "VC",
    "Saint Vincent and the Grenadines": "VC",
    "Sudan": "SD",
    "Suriname": "SR",
    "Sweden": "SE",
    "Switzerland": "CH",
    "Syria": "SY",
    "Taiwan": "TW",
    "Tajikistan": "TJ",
    "Tanzania": "TZ",
    "Thailand": "TH",
    "Timor-Leste": "TL",
    "Togo": "TG",
    "Tonga": "TO",
    "Trinidad and Tobago": "TT",
    "Trinidad & Tobago": "TT",
    "Tunisia": "TN",
    "Turkmenistan": "TM",
    "Tuvalu": "TV",
    "Türkiye": "TR",
    "Uganda": "UG",
    "Ukraine": "UA",
    "United Arab Emirates": "AE",
    "United Kingdom": "GB",
    "United States": "US",
    "Uruguay": "UY",
    "Uzbekistan": "UZ",
    "Vanuatu": "VU",
    "Vatican City": "VA",
    "Venezuela": "VE",
    "Vietnam": "VN",
    "Western Sahara": "EH",
    "Yemen": "YE",
    "Zambia": "ZM",
    "Zimbabwe": "ZW",
}

# Hong Kong has no row or group in 2026: since 85 FR 83765 (23 Dec 2020) it is treated as China.
HONG_KONG_AS_CHINA_FROM = "2020-12-23"

# Dated Country Group history, per country: a list of (effective, ends, groups). None = open.
# Only countries whose membership changed between 2020 and 2026 (as far as known) appear here;
# every other country carries its 2026 groups for all dates (see README: a known limitation).
AS_CHINA = ["<China's groups>"]  # marker: this period takes China's entry (Hong Kong from 23 Dec 2020)
DATED_GROUPS: dict[str, list[tuple[str | None, str | None, list[str]]]] = {
    # Cyprus: D:5 around 2020 (ITAR 126.1(d)(2), domain notes 3.2); A:6 added by 85 FR 84211
    # (28 Dec 2020); absent from D:5 in 2026. The date BIS's table dropped Cyprus was not found:
    # we end D:5 on 30 Sep 2022, the eve of State's first full-year suspension of the policy of
    # denial (1 Oct 2022), because the note to D:5 makes the State list control. [interpretation]
    "CY": [
        (None, "2020-12-27", ["A3", "A4", "B", "D5"]),
        ("2020-12-28", "2022-09-30", ["A3", "A4", "A6", "B", "D5"]),
        ("2022-10-01", None, ["A3", "A4", "A6", "B"]),
    ],
    # Russia: added to ITAR 126.1 effective 18 Mar 2021 (86 FR 14802), hence to D:5.
    "RU": [
        (None, "2021-03-17", ["D1", "D2", "D3", "D4"]),
        ("2021-03-18", None, ["D1", "D2", "D3", "D4", "D5"]),
    ],
    # Ethiopia: added to ITAR 126.1(n) effective 1 Nov 2021 (86 FR 60165); by the note to D:5
    # that put it in D:5 although BIS never amended its own table (Global Compliance News,
    # 10 Nov 2021). Ethiopia was still in 126.1 in July 2025, so we keep it in D:5 open-ended;
    # the 2026 BIS table's omission is read as the same unamended table. [interpretation]
    "ET": [
        (None, "2021-10-31", ["B"]),
        ("2021-11-01", None, ["B", "D5"]),
    ],
    # Cambodia: D:5 from 9 Dec 2021 (86 FR 70015) until 2 Feb 2026 (removed 3 Feb 2026) [secondary].
    "KH": [
        (None, "2021-12-08", ["D1"]),
        ("2021-12-09", "2026-02-02", ["D1", "D5"]),
        ("2026-02-03", None, ["D1"]),
    ],
    # Nicaragua: moved from B to D:1 and D:5 on 15 Mar 2024 (89 FR 18780) [secondary].
    "NI": [
        (None, "2024-03-14", ["B"]),
        ("2024-03-15", None, ["D1", "D5"]),
    ],
    # Ukraine: moved from D:1 to B by 85 FR 84211 (effective 28 Dec 2020) [secondary].
    "UA": [
        (None, "2020-12-27", ["A2", "A3", "A4", "D1"]),
        ("2020-12-28", None, ["A2", "A3", "A4", "B"]),
    ],
    # Mexico: added to A:6 by 85 FR 84211 (effective 28 Dec 2020) [secondary].
    "MX": [
        (None, "2020-12-27", ["A1", "A3", "A4", "B"]),
        ("2020-12-28", None, ["A1", "A3", "A4", "A6", "B"]),
    ],
    # Sudan: in E:1 while designated a State Sponsor of Terrorism; the designation was rescinded
    # on 14 Dec 2020. The BIS amendment date was not found; we align E:1 with the rescission.
    # [unverified, from memory; domain notes 3.2]
    "SD": [
        (None, "2020-12-13", ["B", "D5", "E1"]),
        ("2020-12-14", None, ["B", "D5"]),
    ],
    # Hong Kong before 85 FR 83765: its own destination, in B and A:6 (A:6 as created by the
    # 2011 STA rule). [unverified, from memory] From 23 Dec 2020 it takes China's groups.
    "HK": [
        (None, "2020-12-22", ["A6", "B"]),
        (HONG_KONG_AS_CHINA_FROM, None, AS_CHINA),
    ],
}

# Countries whose latest hand-dated period deliberately differs from the 2026 BIS table.
DELIBERATE = {"ET"}  # see the Ethiopia comment above

# Hong Kong's Country Chart row before 23 Dec 2020: only the CC1 mark is asserted. 85 FR 63009
# (6 Oct 2020) created the CC1 water-cannon ECCNs "to more effectively control exports of water
# cannons to the Hong Kong Police Force", which requires Hong Kong to have been a CC1 destination.
# CC3 (shotguns for police) is assumed to follow CC1 as it does for every CC1 destination except
# the former-Soviet CC2 rows. [interpretation]
HK_CC_BEFORE = ["CC1", "CC3"]

# 15 CFR 742.7(a): ECCNs whose licence requirement is in 742.7 (so whose licensing policy is 742.7(b)).
# Values name the paragraph in the 2020 text. 0A983 is deliberately absent: its requirement and
# policy are in 742.11 (742.7(a)(6) only points there).
CC_ECCNS: list[tuple[str, str, str | None, str | None]] = [
    # (eccn, paragraph and scope, effective, ends)
    # Renumbered by the firearms transfer from the USML, 85 FR 4136/4176 (effective 9 Mar 2020):
    (
        "0A984",
        "742.7(a)(1)-(3): shotguns (CC1; CC2/CC3 for barrel >= 24 in.) - renumbered 0A502",
        None,
        "2020-03-08",
    ),
    (
        "0A985",
        "742.7(a)(4): discharge-type arms, all destinations except Canada - renumbered 0A503",
        None,
        "2020-03-08",
    ),
    ("0A987", "742.7(a)(1): optical sighting devices, CC1 - renumbered 0A504", None, "2020-03-08"),
    ("0E984", "742.7(a)(1): shotgun technology, CC1 - renumbered 0E502", None, "2020-03-08"),
    ("0A502", "742.7(a)(1)-(3): shotguns (CC1; CC2/CC3 for barrel >= 24 in.)", "2020-03-09", None),
    ("0A503", "742.7(a)(4): discharge-type arms, all destinations except Canada", "2020-03-09", None),
    ("0A504", "742.7(a)(1): optical sighting devices for firearms, CC1", "2020-03-09", None),
    ("0A505.b", "742.7(a)(1): buckshot shotgun shells, CC1", "2020-03-09", None),
    ("0E502", "742.7(a)(1): technology for 0A502 shotguns, CC1", "2020-03-09", None),
    ("0E505", "742.7(a)(1): technology for 0A505.b buckshot shells, CC1", "2020-03-09", None),
    # Water cannon, 85 FR 63009 (effective 6 Oct 2020):
    ("0A977", "742.7(a)(1): water cannon systems for riot or crowd control, CC1", "2020-10-06", None),
    ("0D977", "742.7(a)(1): software for 0A977 water cannon, CC1", "2020-10-06", None),
    ("0E977", "742.7(a)(1): technology for 0A977 water cannon, CC1", "2020-10-06", None),
    # Unchanged through the period:
    ("0A978", "742.7(a)(1): law enforcement striking weapons, CC1", None, None),
    ("0A979", "742.7(a)(1): police helmets and shields, CC1", None, None),
    ("0A981", "742.7(a)(5): equipment for the execution of human beings, all destinations", None, None),
    ("0A982", "742.7(a)(4): law enforcement restraint devices, all destinations except Canada", None, None),
    ("0E982", "742.7(a)(4): technology for 0A982 and 0A503, all destinations except Canada", None, None),
    ("1A984", "742.7(a)(1): tear gas, pepper spray, smoke bombs and other chemical agents, CC1", None, None),
    ("1A985", "742.7(a)(1): fingerprinting powders, dyes and inks, CC1", None, None),
    ("3A980", "742.7(a)(1): voice print identification and analysis equipment, CC1", None, None),
    (
        "3A981",
        "742.7(a)(1): polygraphs, fingerprint analyzers, electronic monitoring restraint devices, CC1",
        None,
        None,
    ),
    ("3D980", "742.7(a)(1): software for 3A980 and 3A981, CC1", None, None),
    ("3E980", "742.7(a)(1): technology for 3A980 and 3A981, CC1", None, None),
    ("4A003", "742.7(a)(1): digital computers, for fingerprint computers only, CC1", None, None),
    ("4A980", "742.7(a)(1): computers for fingerprint equipment n.e.s., CC1", None, None),
    ("4D001", "742.7(a)(1): computer software, for fingerprint computers only, CC1", None, None),
    ("4D980", "742.7(a)(1): software for 4A980, CC1", None, None),
    ("4E001", "742.7(a)(1): computer technology, for fingerprint computers only, CC1", None, None),
    ("4E980", "742.7(a)(1): technology for 4A980, CC1", None, None),
    ("6A002", "742.7(a)(1): optical sensors, for police-model infrared viewers only, CC1", None, None),
    ("6E001", "742.7(a)(1): development technology, for police-model infrared viewers only, CC1", None, None),
    ("6E002", "742.7(a)(1): production technology, for police-model infrared viewers only, CC1", None, None),
    ("9A980", "742.7(a)(1): nonmilitary mobile crime science laboratories, CC1", None, None),
]

# 15 CFR 742.1(b)(1) / part 754: short-supply ECCNs. The 2026 CCL has exactly these six (checked
# against the snapshot below). 1C981 (crude petroleum) appears in older texts but not in 2026, and
# the date it left is not known, so it is left out.
SS_ECCNS = ["0A980", "1C980", "1C982", "1C983", "1C984", "1C988"]


def entry(key: str, value: object, effective: str | None, ends: str | None) -> dict[str, object]:
    out: dict[str, object] = {"key": key, "value": value}
    if effective:
        out["effective"] = effective
    if ends:
        out["ends"] = ends
    return out


def dump(path: Path, doc: dict[str, object]) -> None:
    """One entry per line, so diffs of the data read like diffs of a table."""
    head = {k: v for k, v in doc.items() if k != "entries"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    lines.append('  "entries": [')
    rows = [f"    {json.dumps(e, ensure_ascii=False)}" for e in doc["entries"]]  # type: ignore[union-attr]
    lines.append(",\n".join(rows))
    lines.append("  ]")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_INPUT
    chart = json.loads((src / "country-chart.json").read_text(encoding="utf-8"))
    groups = json.loads((src / "country-groups.json").read_text(encoding="utf-8"))
    ccl = json.loads((src / "ccl.json").read_text(encoding="utf-8"))

    # --- Country Groups, 2026 ---
    by_iso: dict[str, set[str]] = {}
    for group, members in groups["groups"].items():
        for name in members:
            by_iso.setdefault(ISO[name], set()).add(group.replace(":", ""))
    for name in list(chart["countries"]) + list(chart["embargoed"]):
        by_iso.setdefault(ISO[name], set())
    countries = sorted(set(by_iso) | {"HK", "MO", "XK"})

    def order(gs: set[str] | list[str]) -> list[str]:
        ranks = ["A1", "A2", "A3", "A4", "A5", "A6", "B", "D1", "D2", "D3", "D4", "D5", "E1", "E2"]
        return sorted(gs, key=ranks.index)

    group_entries = []
    for iso in countries:
        if iso in DATED_GROUPS:
            hist = DATED_GROUPS[iso]
            last = hist[-1]
            # The 2026 snapshot must agree with the open-ended (latest) period we wrote by hand.
            if last[2] is not AS_CHINA and iso not in DELIBERATE and set(last[2]) != by_iso.get(iso, set()):
                raise SystemExit(
                    f"{iso}: hand-dated groups {last[2]} disagree with 2026 {sorted(by_iso.get(iso, set()))}"
                )
            for eff, ends, gs in hist:
                value = order(by_iso["CN"]) if gs is AS_CHINA else order(gs)
                group_entries.append(entry(iso, value, eff, ends))
        else:
            group_entries.append(entry(iso, order(by_iso.get(iso, set())), None, None))
    dump(
        HERE / "country-groups.json",
        {
            "description": "Country Groups of each destination (A:1 to E:2 written without the colon), dated where membership changed between 2020 and 2026",
            "source": f"15 CFR part 740, Supplement No. 1; {SNAPSHOT}; dated changes per policies/shared/data/README.md",
            "entries": group_entries,
        },
    )

    # --- CC columns of the Country Chart ---
    cc_entries = []
    rows = {
        ISO[n]: [m.replace(" ", "") for m in r["marks"] if m.startswith("CC")]
        for n, r in chart["countries"].items()
    }
    for name in chart["embargoed"]:  # Cuba, Iran, North Korea, Syria: no marks; part 746 governs
        rows[ISO[name]] = []
    for iso in countries:
        if iso == "HK":
            cc_entries.append(entry("HK", HK_CC_BEFORE, None, "2020-12-22"))
            cc_entries.append(entry("HK", rows["CN"], HONG_KONG_AS_CHINA_FROM, None))
        elif iso in rows:
            cc_entries.append(entry(iso, rows[iso], None, None))
        # the United States has no row: exports do not go to it
    dump(
        HERE / "cc-columns.json",
        {
            "description": "Crime control (CC) columns of the Commerce Country Chart marked X for each destination; embargoed destinations (CU, IR, KP, SY) have no marks and are governed by part 746",
            "source": f"15 CFR part 738, Supplement No. 1; {SNAPSHOT}; Hong Kong dated per 85 FR 83765 and 85 FR 63009",
            "entries": cc_entries,
        },
    )

    # --- 742.7(a) ECCNs ---
    known = {e["eccn"] for e in ccl["entries"]}
    for eccn, _, _effective, ends in CC_ECCNS:
        base = eccn.split(".")[0]
        if ends is None and base not in known:
            raise SystemExit(f"{eccn} is not in the 2026 CCL")
    dump(
        HERE / "crime-control-eccns.json",
        {
            "description": "ECCNs whose licence requirement is in 15 CFR 742.7(a), so whose licensing policy is 742.7(b); value: the paragraph and scope in the 2020 text",
            "source": "15 CFR 742.7(a) as in force 9 Mar 2020 (85 FR 4176) and as amended 6 Oct 2020 (85 FR 63009); pre-9 Mar 2020 numbering from the earlier text (domain notes 1.2)",
            "entries": [entry(e, v, eff, ends) for e, v, eff, ends in CC_ECCNS],
        },
    )

    # --- short supply ---
    ss_2026 = sorted(
        e["eccn"]
        for e in ccl["entries"]
        if "SS" in [r.strip() for r in (e["reasonForControl"] or "").split(",")]
    )
    if ss_2026 != SS_ECCNS:
        raise SystemExit(f"short-supply ECCNs changed: {ss_2026}")
    headings = {e["eccn"]: e["heading"] for e in ccl["entries"]}
    dump(
        HERE / "short-supply-eccns.json",
        {
            "description": "ECCNs controlled for short supply (SS) reasons under part 754; value: the CCL heading, shortened",
            "source": f"15 CFR 742.1(b)(1) and part 774 Supplement No. 1; {SNAPSHOT}",
            "entries": [
                entry(e, headings[e].split(" listed in")[0].split(" (")[0].rstrip("."), None, None)
                for e in SS_ECCNS
            ],
        },
    )

    (HERE / "countries.txt").write_text("\n".join(countries) + "\n", encoding="utf-8")
    print(f"{len(countries)} countries, {len(group_entries)} group entries, {len(cc_entries)} chart entries")


if __name__ == "__main__":
    main()
