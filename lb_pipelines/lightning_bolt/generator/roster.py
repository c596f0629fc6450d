"""The organisation of a synthetic health system: facilities, departments, people, assignments.

Reference data only; the calendar (schedules, requests, slots) lives in the generator. Every
choice comes from a `random.Random` handed in, so a seed gives the same roster every time.

Shape, so that a hospital integration analyst recognises it:
- facilities in several time zones (Chicago and Phoenix always, then New York and Denver),
  each with a COID and 3-7 specialty departments named "Cardiology - Mercy North";
- about 12 people per department: physicians, CRNAs in anesthesiology, residents in teaching
  departments, APPs (Exempt) and techs (Non-Exempt), plus one placeholder ("Cardiology On Call");
- per department, assignments sized to the staff: day shifts, overnight call, 24-hour call,
  night shifts, Admin (weekdays) and two Off assignments (Vacation, Conference).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Roles are the generator's own staffing pools; personnel_type is what the API shows.
PERSONNEL_TYPE = {"MD": "Physician", "CRNA": "CRNA", "RES": "Resident", "APP": "Exempt", "TECH": "Non-Exempt"}
# Days a day one person of the pool can be scheduled for, after weekends, time off and rest: a
# shift costs one, an overnight one and a half (no day shift after it), a 24-hour call two.
CAPACITY = {"MD": 0.8, "CRNA": 0.8, "RES": 0.85, "APP": 0.75, "TECH": 0.85}

# Facility time zones: the first two always exist, so Phoenix (no DST) is never missing.
TIME_ZONES = ("America/Chicago", "America/Phoenix", "America/New_York", "America/Denver")
_TZ_CYCLE = ("America/New_York", "America/Denver", "America/Chicago", "America/Phoenix")
_FACILITY_BASES = {
    "America/Chicago": ("Mercy", "St. Luke's", "Good Samaritan", "Lakeshore", "Prairie"),
    "America/Phoenix": ("Desert Valley", "Sonoran", "Camelback", "Saguaro"),
    "America/New_York": ("Hudson", "St. Vincent's", "Riverside", "Bayview"),
    "America/Denver": ("Front Range", "Mountain View", "Aspen Ridge", "Summit"),
}
_FACILITY_SUFFIXES = ("North", "South", "East", "West", "Downtown", "Memorial", "Regional", "Community")
AREA_CODES = {
    "America/Chicago": ("312", "773", "630"),
    "America/Phoenix": ("602", "480", "623"),
    "America/New_York": ("212", "718", "914"),
    "America/Denver": ("303", "720", "719"),
}
EMAIL_DOMAIN = "health.example.org"

CORE_SPECIALTIES = ("Anesthesiology", "Emergency Medicine", "Hospital Medicine")
OTHER_SPECIALTIES = (
    "Cardiology", "Radiology", "General Surgery", "OB/GYN", "Pediatrics", "Critical Care", "Neurology",
)
SPECIALTY_ABBR = {
    "Anesthesiology": "ANES", "Emergency Medicine": "EM", "Hospital Medicine": "HM", "Cardiology": "CARD",
    "Radiology": "RAD", "General Surgery": "SURG", "OB/GYN": "OBGYN", "Pediatrics": "PEDS",
    "Critical Care": "CCM", "Neurology": "NEURO",
}
_SIZE_WEIGHT = {
    "Anesthesiology": 1.7, "Emergency Medicine": 1.2, "Hospital Medicine": 1.3, "Cardiology": 0.9,
    "Radiology": 1.0, "General Surgery": 0.9, "OB/GYN": 0.9, "Pediatrics": 0.8, "Critical Care": 0.9,
    "Neurology": 0.7,
}
RESIDENCY_SPECIALTIES = (
    "Anesthesiology", "Emergency Medicine", "Hospital Medicine", "General Surgery", "OB/GYN", "Pediatrics",
    "Neurology",
)
_APP_SPECIALTIES = (
    "Emergency Medicine", "Hospital Medicine", "Cardiology", "General Surgery", "OB/GYN", "Pediatrics",
    "Critical Care", "Neurology",
)
_TECH_SPECIALTIES = ("Anesthesiology", "Cardiology", "Radiology")

# (name, abbreviation, assignment_type, default_start, default_end[, weekdays only]).
# Per pool, in priority order; the first one is the main assignment that gets extra positions.
_Template = tuple
_RESIDENT = [
    ("Resident Day", "RDAY", "Shift", "06:00", "18:00"),
    ("Resident 24hr Call", "R24", "Call", "07:00", "07:00"),
    ("Night Float", "NF", "Shift", "18:00", "06:00"),
]
TEMPLATES: dict[str, dict[str, list[_Template]]] = {
    "Anesthesiology": {
        "MD": [("OR Anesthesiologist", "OR", "Shift", "07:00", "15:00"),
               ("Anesthesia Call", "CALL", "Call", "17:00", "07:00"),
               ("In-House 24hr Call", "24H", "Call", "07:00", "07:00"),
               ("OB Anesthesia", "OBA", "Shift", "07:00", "19:00"),
               ("Pain Clinic", "PAIN", "Shift", "08:00", "16:00", True)],
        "CRNA": [("CRNA OR", "CRNA", "Shift", "07:00", "15:00"),
                 ("CRNA Late", "CRNAL", "Shift", "11:00", "19:00"),
                 ("CRNA Night", "CRNAN", "Shift", "19:00", "07:00"),
                 ("CRNA Call", "CRNAC", "Call", "15:00", "07:00")],
        "TECH": [("Anesthesia Tech", "ATECH", "Shift", "06:30", "15:00", True),
                 ("Anesthesia Tech Evening", "ATECHE", "Shift", "14:30", "23:00", True)],
    },
    "Emergency Medicine": {
        "MD": [("ED Day", "EDD", "Shift", "07:00", "19:00"), ("ED Night", "EDN", "Shift", "19:00", "07:00"),
               ("ED Swing", "EDS", "Shift", "11:00", "23:00"), ("ED Mid", "EDM", "Shift", "09:00", "21:00")],
        "APP": [("APP Fast Track", "FT", "Shift", "10:00", "22:00"),
                ("APP Night", "APPN", "Shift", "19:00", "07:00")],
    },
    "Hospital Medicine": {
        "MD": [("Hospitalist Day", "HD", "Shift", "07:00", "19:00"),
               ("Nocturnist", "NOC", "Shift", "19:00", "07:00"),
               ("Admitter", "ADMT", "Shift", "12:00", "22:00")],
        "APP": [("APP Day", "APPD", "Shift", "07:00", "19:00"),
                ("APP Evening", "APPE", "Shift", "13:00", "23:00")],
    },
    "Cardiology": {
        "MD": [("Cardiology Consults", "CONS", "Shift", "07:00", "17:00"),
               ("Cardiology Call", "CALL", "Call", "17:00", "07:00"),
               ("Cath Lab", "CATH", "Shift", "07:00", "17:00", True),
               ("STEMI Call", "STEMI", "Call", "17:00", "07:00"),
               ("Echo Reading", "ECHO", "Shift", "08:00", "16:00", True)],
        "APP": [("Cardiology APP", "APP", "Shift", "07:00", "17:00", True)],
        "TECH": [("Cath Lab Tech", "CLT", "Shift", "06:30", "17:00", True)],
    },
    "Radiology": {
        "MD": [("Reading Room Day", "RR", "Shift", "07:00", "15:00"),
               ("Radiology Call", "CALL", "Call", "17:00", "07:00"),
               ("Overnight Reads", "NITE", "Shift", "22:00", "07:00"),
               ("IR Call", "IR", "Call", "17:00", "07:00"),
               ("Mammography", "MAMMO", "Shift", "08:00", "16:00", True)],
        "TECH": [("CT Tech Day", "CTD", "Shift", "07:00", "19:00", True),
                 ("CT Tech Night", "CTN", "Shift", "19:00", "07:00")],
    },
    "General Surgery": {
        "MD": [("OR Block", "OR", "Shift", "07:00", "15:00", True),
               ("Surgery 24hr Call", "24H", "Call", "07:00", "07:00"),
               ("Acute Care Surgery", "ACS", "Shift", "07:00", "19:00"),
               ("Surgery Clinic", "CLIN", "Shift", "08:00", "17:00", True)],
        "APP": [("Surgery PA", "PA", "Shift", "06:00", "16:00", True)],
    },
    "OB/GYN": {
        "MD": [("L&D Day", "LDD", "Shift", "07:00", "19:00"),
               ("L&D 24hr Call", "24H", "Call", "07:00", "07:00"),
               ("OB Hospitalist Night", "OBN", "Shift", "19:00", "07:00"),
               ("GYN Clinic", "CLIN", "Shift", "08:00", "17:00", True)],
        "APP": [("Midwife", "CNM", "Shift", "07:00", "19:00")],
    },
    "Pediatrics": {
        "MD": [("Peds Hospitalist", "PH", "Shift", "07:00", "19:00"),
               ("Peds Call", "CALL", "Call", "17:00", "07:00"),
               ("Newborn Nursery", "NBN", "Shift", "07:00", "15:00"),
               ("Peds Night", "PN", "Shift", "19:00", "07:00")],
        "APP": [("Peds NP", "NP", "Shift", "07:00", "19:00", True)],
    },
    "Critical Care": {
        "MD": [("ICU Day", "ICUD", "Shift", "07:00", "19:00"),
               ("ICU Night", "ICUN", "Shift", "19:00", "07:00"),
               ("ICU Call", "CALL", "Call", "17:00", "07:00")],
        "APP": [("ICU APP Day", "APPD", "Shift", "07:00", "19:00"),
                ("ICU APP Night", "APPN", "Shift", "19:00", "07:00")],
    },
    "Neurology": {
        "MD": [("Neurology Consults", "CONS", "Shift", "07:00", "17:00"),
               ("Stroke Call", "STROKE", "Call", "17:00", "07:00"),
               ("EEG Reading", "EEG", "Shift", "08:00", "16:00", True),
               ("Neuro Call", "NCALL", "Call", "17:00", "07:00")],
        "APP": [("Neuro APP", "APP", "Shift", "08:00", "17:00", True)],
    },
}
ADMIN_TEMPLATE = ("Admin", "ADMIN", "Admin", "08:00", "12:00", True)
OFF_TEMPLATES = (
    ("Vacation", "VAC", "Off", "07:00", "15:00"),
    ("Conference", "CONF", "Off", "07:00", "15:00"),
)

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen",
    "Charles", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Margaret",
    "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua", "Michelle",
    "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie",
    "George", "Rebecca", "Jason", "Sharon", "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Dorothy",
    "Jacob", "Amy", "Nicholas", "Kathleen", "Gary", "Angela", "Eric", "Shirley", "Jonathan", "Emma",
    "Stephen", "Brenda", "Larry", "Pamela", "Justin", "Nicole", "Scott", "Anna", "Brandon", "Samantha",
    "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Debra", "Alexander", "Rachel", "Patrick",
    "Carolyn", "Frank", "Janet", "Raymond", "Maria", "Jack", "Olivia", "Dennis", "Heather", "Jerry", "Helen",
    "Priya", "Rahul", "Wei", "Mei", "Hiroshi", "Yuki", "Ahmed", "Fatima", "Omar", "Aisha", "Carlos", "Sofia",
    "Diego", "Lucia", "Mateo", "Valentina", "Ivan", "Olga", "Kwame", "Adaeze", "Arjun", "Ananya", "Min-jun",
    "Seo-yeon", "Nguyen", "Linh", "Tariq", "Leila",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez",
    "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
    "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks",
    "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo",
    "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "O'Brien", "McCarthy", "Sullivan",
    "Kowalski", "Nowak", "Schmidt", "Mueller", "Fischer", "Weber", "Rossi", "Russo", "Chen", "Wang", "Liu",
    "Zhang", "Yamamoto", "Tanaka", "Sato", "Shah", "Singh", "Gupta", "Khan", "Ali", "Hassan", "Okafor",
    "Mensah", "Ivanova", "Petrov", "Novak", "Cohen", "Levy", "Friedman", "Park", "Choi", "Tran", "Pham",
    "Vo", "Da Silva", "Santos", "Oliveira", "Van Dyke", "St. John", "Abernathy-Lowe", "MacDonald",
)


@dataclass(slots=True)
class Facility:
    name: str
    coid: str
    tz: str
    teaching: bool
    size: int  # number of departments


@dataclass(slots=True)
class Department:
    idx: int
    id: int
    name: str
    specialty: str
    facility: int
    tz: str
    coid: str
    kronos_id: str | None
    lo: int = 0  # people of the department are person indexes lo..hi-1 (placeholder apart)
    hi: int = 0
    placeholder: int = -1
    pools: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class Person:
    idx: int
    dept: int
    role: str  # MD, CRNA, RES, APP, TECH, or PH for a placeholder
    first: str | None
    last: str
    id: int = 0
    leave_day: int | None = None  # inactive from this day index on (None: active)
    record: dict = field(default_factory=dict)


@dataclass(slots=True)
class Assignment:
    id: int
    dept: int
    name: str
    abbr: str
    type: str
    start: int  # minutes after local midnight
    end: int
    pool: str  # staffing role, "ANY" for Off assignments
    positions: int = 1
    weekdays_only: bool = False
    inactive_from: int | None = None  # day index from which it has no slots
    placeholder_rate: float = 0.0


@dataclass(slots=True)
class Roster:
    facilities: list[Facility]
    departments: list[Department]
    people: list[Person]  # index = person idx; the placeholders come after everybody else
    assignments: list[Assignment]
    n_providers: int
    schedulers: list[list[str]]  # per facility, the user names of its schedulers
    admin_user: str


def hhmm_to_min(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:])


def _split(total: int, weights: list[float], minimum: int) -> list[int]:
    """Whole numbers proportional to weights that add up to total, none below minimum."""
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    sizes = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in by_remainder[: total - sum(sizes)]:
        sizes[i] += 1
    while min(sizes) < minimum:
        sizes[sizes.index(max(sizes))] -= 1
        sizes[sizes.index(min(sizes))] += 1
    return sizes


def _composition(specialty: str, size: int, teaching: bool) -> list[str]:
    """The roles of a department's people, physicians first."""
    res = max(2, round(size * 0.25)) if teaching and specialty in RESIDENCY_SPECIALTIES else 0
    crna = round(size * 0.4) if specialty == "Anesthesiology" else 0
    tech = (1 + (size >= 16)) if specialty in _TECH_SPECIALTIES else 0
    app = max(1, round(size * 0.15)) if specialty in _APP_SPECIALTIES else 0
    counts = {"RES": res, "CRNA": crna, "TECH": tech, "APP": app}
    for role in ("APP", "TECH", "RES", "CRNA"):  # keep at least two physicians
        while size - sum(counts.values()) < 2 and counts[role] > 0:
            counts[role] -= 1
    counts["MD"] = size - sum(counts.values())
    return [role for role in ("MD", "CRNA", "RES", "APP", "TECH") for _ in range(counts[role])]


def _facilities(rng: random.Random, n_dept: int) -> list[Facility]:
    facilities: list[Facility] = []
    per_tz: dict[str, int] = {}
    names = {}  # per time zone, every base x suffix name once, in a seeded order
    for tz, bases in _FACILITY_BASES.items():
        combos = [f"{b} {s}" for s in _FACILITY_SUFFIXES for b in bases]
        names[tz] = rng.sample(combos, len(combos))
    remaining = n_dept
    while remaining:
        f = len(facilities)
        tz = TIME_ZONES[f] if f < 2 else _TZ_CYCLE[(f - 2) % len(_TZ_CYCLE)]
        k = per_tz.get(tz, 0)
        per_tz[tz] = k + 1
        name = names[tz][k % len(names[tz])]
        if k >= len(names[tz]):
            name += f" {k // len(names[tz]) + 1}"
        count = rng.randint(3, 7)
        if f == 0:
            count = max(1, min(count, n_dept - 1))  # leave room for a second facility (Phoenix)
        count = min(count, remaining)
        teaching = f == 0 or rng.random() < 0.25
        facilities.append(Facility(name, f"COID-{101 + f:04d}", tz, teaching, count))
        remaining -= count
    return facilities


def login(first: str, last: str) -> str:
    return "".join(c for c in (first[0] + last).lower() if c.isalpha())


def build_roster(rng: random.Random, providers: int) -> Roster:
    """Facilities, departments and people (records filled in later by `fill_people`)."""
    n_dept = max(2, min(providers // 5, round(providers / 12.5)))
    facilities = _facilities(rng, n_dept)
    departments: list[Department] = []
    for f, fac in enumerate(facilities):
        # The first facility has every kind of staff; the others an anesthesia department and a mix.
        core = CORE_SPECIALTIES if f == 0 else CORE_SPECIALTIES[:1]
        rest = [s for s in CORE_SPECIALTIES + OTHER_SPECIALTIES if s not in core]
        specialties = list(core) + rng.sample(rest, len(rest))
        for spec in specialties[: fac.size]:
            idx = len(departments)
            kronos = None if rng.random() < 0.1 else f"{fac.coid[5:]}-{rng.randint(4000, 8999)}"
            departments.append(
                Department(idx, 101 + idx, f"{spec} - {fac.name}", spec, f, fac.tz, fac.coid, kronos)
            )
    if len(departments) >= 3 and all(d.kronos_id for d in departments):
        departments[-1].kronos_id = None  # the realistic gap always exists
    weights = [
        _SIZE_WEIGHT[d.specialty] * (1.15 if facilities[d.facility].teaching else 1.0)
        * rng.uniform(0.85, 1.15)
        for d in departments
    ]
    sizes = _split(providers, weights, 5)
    people: list[Person] = []
    for d, size in zip(departments, sizes):
        d.lo = len(people)
        for role in _composition(d.specialty, size, facilities[d.facility].teaching):
            p = Person(len(people), d.idx, role, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
            d.pools.setdefault(role, []).append(p.idx)
            people.append(p)
        d.hi = len(people)
    for d in departments:
        d.placeholder = len(people)
        people.append(Person(len(people), d.idx, "PH", None, f"{d.specialty} On Call"))
    ids = list(range(10001, 10001 + len(people)))
    rng.shuffle(ids)  # ids follow hiring order, not departments
    for p, pid in zip(people, ids):
        p.id = pid
    schedulers = []
    for _ in facilities:
        schedulers.append(
            [f"scheduler.{login(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))}" for _ in range(2)]
        )
    admin = f"admin.{login(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))}"
    return Roster(facilities, departments, people, [], providers, schedulers, admin)


def build_assignments(rng: random.Random, roster: Roster) -> None:
    """Assignments per department, sized to what each pool can staff."""
    next_id = 2001
    for d in roster.departments:
        chosen: list[tuple[_Template, str, int]] = []
        for role in ("MD", "CRNA", "RES", "APP", "TECH"):
            templates = TEMPLATES[d.specialty].get(role, _RESIDENT if role == "RES" else [])
            staff = len(d.pools.get(role, ()))
            if not staff or not templates:
                continue
            budget = staff * CAPACITY[role]
            picked: list[list] = []
            used = 0.0
            for t in templates + ([ADMIN_TEMPLATE] if role == "MD" and staff >= 3 else []):
                cost = _cost(t)
                if used + cost <= budget or not picked:
                    picked.append([t, 1])
                    used += cost
            main = picked[0]
            while used + _cost(main[0]) <= budget and main[1] < 6:
                main[1] += 1
                used += _cost(main[0])
            chosen += [(t, role, n) for t, n in picked]
        chosen += [(t, "ANY", 1) for t in OFF_TEMPLATES]
        heavy_placeholder = rng.random() < 0.15
        for t, role, positions in chosen:
            a = Assignment(
                next_id, d.idx, t[0], t[1], t[2], hhmm_to_min(t[3]), hhmm_to_min(t[4]), role, positions,
                weekdays_only=len(t) > 5 and t[5],
            )
            if a.type == "Call" and role == "MD":
                a.placeholder_rate = 0.35 if heavy_placeholder else 0.04
            roster.assignments.append(a)
            next_id += 1


def _cost(t: _Template) -> float:
    """Person-days a day that an assignment takes (see CAPACITY)."""
    start, end = hhmm_to_min(t[3]), hhmm_to_min(t[4])
    per_day = 1.0 if end > start else 1.5 if end < start else 2.0
    return per_day * (5 / 7 if len(t) > 5 and t[5] else 1.0)
