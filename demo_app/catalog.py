"""The demo marketplace's catalog: categories, procedures, doctors and packages.

Written for the demo; prices are indicative ranges in US dollars.
"""

from __future__ import annotations

from dataclasses import dataclass

from penchant import Catalog, Category, Item

__all__ = ["CATEGORIES", "DOCTORS", "PACKAGES", "PROCEDURES", "build_catalog"]


@dataclass(frozen=True, slots=True)
class _Category:
    id: int
    name: str
    slug: str
    keywords: tuple[str, ...]
    blurb: str


@dataclass(frozen=True, slots=True)
class _Procedure:
    id: int
    category_id: int
    name: str
    description: str
    price: tuple[int, int]
    recovery: str
    duration: str


@dataclass(frozen=True, slots=True)
class _Doctor:
    id: int
    name: str
    specialty: str
    city: str
    years: int
    rating: float
    procedure_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Package:
    id: int
    name: str
    description: str
    procedure_ids: tuple[int, ...]
    price: int
    sessions: int


CATEGORIES: tuple[_Category, ...] = (
    _Category(
        1,
        "Injectables",
        "injectables",
        ("botox", "filler", "fillers", "wrinkles", "lips", "neurotoxin", "injections"),
        "Wrinkle relaxers and dermal fillers that soften lines and restore volume.",
    ),
    _Category(
        2,
        "Skin resurfacing",
        "skin-resurfacing",
        ("peel", "laser", "resurfacing", "texture", "sun", "damage"),
        "Peels and lasers that renew the outer layers of the skin.",
    ),
    _Category(
        3,
        "Body contouring",
        "body-contouring",
        ("liposuction", "lipo", "fat", "tummy", "body", "sculpting"),
        "Surgical and non-surgical ways to remove stubborn fat and reshape the body.",
    ),
    _Category(
        4,
        "Breast surgery",
        "breast-surgery",
        ("breast", "augmentation", "implants", "lift", "reduction"),
        "Augmentation, lifts and reductions by board-certified plastic surgeons.",
    ),
    _Category(
        5,
        "Facial surgery",
        "facial-surgery",
        ("rhinoplasty", "nose", "facelift", "eyelid", "blepharoplasty", "chin"),
        "Rhinoplasty, facelifts and eyelid surgery for lasting structural change.",
    ),
    _Category(
        6,
        "Hair restoration",
        "hair-restoration",
        ("hair", "transplant", "baldness", "thinning", "prp", "fue"),
        "Transplants and regenerative treatments for thinning hair.",
    ),
    _Category(
        7,
        "Hair removal",
        "hair-removal",
        ("removal", "electrolysis", "unwanted", "shaving", "bikini"),
        "Long-term reduction of unwanted hair with laser or electrolysis.",
    ),
    _Category(
        8,
        "Medical skincare",
        "medical-skincare",
        ("acne", "facial", "hydrafacial", "microneedling", "rosacea", "skincare"),
        "Clinical facials and treatment plans for acne, redness and dull skin.",
    ),
    _Category(
        9,
        "Dental aesthetics",
        "dental-aesthetics",
        ("teeth", "veneers", "whitening", "smile", "dental", "aligners"),
        "Veneers, whitening and aligners for a brighter, straighter smile.",
    ),
    _Category(
        10,
        "Vein treatments",
        "vein-treatments",
        ("veins", "varicose", "spider", "sclerotherapy", "legs"),
        "Minimally invasive treatments for spider and varicose veins.",
    ),
    _Category(
        11,
        "Skin tightening",
        "skin-tightening",
        ("tightening", "hifu", "radiofrequency", "sagging", "thread", "lifting"),
        "Ultrasound, radiofrequency and threads that firm loose skin without surgery.",
    ),
    _Category(
        12,
        "Pigmentation and scars",
        "pigmentation-and-scars",
        ("scars", "pigmentation", "melasma", "tattoo", "spots", "stretch"),
        "Treatments that fade dark spots, melasma, tattoos and scars.",
    ),
)

_P = _Procedure
PROCEDURES: tuple[_Procedure, ...] = (
    # Injectables
    _P(
        1,
        1,
        "Botox for frown lines",
        "A few small injections relax the muscles that cause vertical lines between the brows.",
        (300, 600),
        "None",
        "15 minutes",
    ),
    _P(
        2,
        1,
        "Lip filler",
        "Hyaluronic acid filler adds shape, definition and hydration to the lips.",
        (500, 900),
        "1-2 days of swelling",
        "30 minutes",
    ),
    _P(
        3,
        1,
        "Cheek filler",
        "Restores mid-face volume for a lifted, rested look.",
        (700, 1400),
        "1-3 days",
        "30 minutes",
    ),
    _P(
        4,
        1,
        "Tear trough filler",
        "Softens hollows under the eyes that make you look tired.",
        (600, 1100),
        "2-5 days of mild bruising",
        "30 minutes",
    ),
    _P(
        5,
        1,
        "Jawline contouring",
        "Filler placed along the jaw and chin to sharpen the profile.",
        (900, 2000),
        "2-3 days",
        "45 minutes",
    ),
    _P(
        6,
        1,
        "Masseter Botox",
        "Relaxes the chewing muscles to slim the lower face and ease teeth grinding.",
        (400, 800),
        "None",
        "15 minutes",
    ),
    # Skin resurfacing
    _P(
        7,
        2,
        "Chemical peel",
        "An acid solution removes damaged surface cells to even out tone and texture.",
        (150, 600),
        "3-7 days of peeling",
        "30 minutes",
    ),
    _P(
        8,
        2,
        "Fractional CO2 laser",
        "Ablative laser that treats deep wrinkles, sun damage and scarring.",
        (1500, 4000),
        "1-2 weeks",
        "1-2 hours",
    ),
    _P(
        9,
        2,
        "Microdermabrasion",
        "Gentle mechanical exfoliation for smoother, brighter skin.",
        (100, 200),
        "None",
        "30 minutes",
    ),
    _P(
        10,
        2,
        "Erbium laser resurfacing",
        "A lighter ablative laser for fine lines with a shorter recovery than CO2.",
        (1200, 3000),
        "5-10 days",
        "1 hour",
    ),
    _P(
        11,
        2,
        "IPL photofacial",
        "Intense pulsed light fades sun spots and redness.",
        (300, 600),
        "1-2 days",
        "30 minutes",
    ),
    _P(
        12,
        2,
        "Dermaplaning",
        "A blade removes dead skin and fine facial hair for an instant glow.",
        (75, 250),
        "None",
        "30 minutes",
    ),
    # Body contouring
    _P(
        13,
        3,
        "Liposuction",
        "Surgical removal of fat from the abdomen, flanks, thighs or arms.",
        (3500, 9000),
        "1-2 weeks",
        "1-3 hours",
    ),
    _P(
        14,
        3,
        "Tummy tuck",
        "Removes excess skin and tightens the abdominal muscles.",
        (6000, 12000),
        "2-4 weeks",
        "2-4 hours",
    ),
    _P(
        15,
        3,
        "Fat freezing",
        "Cryolipolysis cools fat cells until the body clears them over a few months.",
        (700, 1500),
        "None",
        "35-60 minutes",
    ),
    _P(
        16,
        3,
        "Brazilian butt lift",
        "Fat is moved from the waist to the buttocks for fuller curves.",
        (8000, 15000),
        "2-3 weeks",
        "2-3 hours",
    ),
    _P(
        17,
        3,
        "Arm lift",
        "Removes loose skin from the upper arms after weight loss.",
        (4000, 8000),
        "2 weeks",
        "2-3 hours",
    ),
    _P(
        18,
        3,
        "Double chin injections",
        "Deoxycholic acid injections dissolve fat under the chin.",
        (1200, 2400),
        "3-7 days of swelling",
        "20 minutes",
    ),
    # Breast surgery
    _P(
        19,
        4,
        "Breast augmentation",
        "Silicone or saline implants increase size and improve shape.",
        (6000, 12000),
        "1-2 weeks",
        "1-2 hours",
    ),
    _P(
        20,
        4,
        "Breast lift",
        "Raises and reshapes breasts that have lost firmness.",
        (7000, 13000),
        "2 weeks",
        "2-3 hours",
    ),
    _P(
        21,
        4,
        "Breast reduction",
        "Reduces breast size to relieve neck and back pain.",
        (7000, 14000),
        "2-3 weeks",
        "3-4 hours",
    ),
    _P(
        22,
        4,
        "Fat transfer to the breast",
        "Your own fat, taken by liposuction, adds a natural cup size.",
        (7000, 11000),
        "1-2 weeks",
        "2-3 hours",
    ),
    _P(
        23,
        4,
        "Breast implant removal",
        "Removes or replaces implants, often with a lift.",
        (5000, 10000),
        "1-2 weeks",
        "2-3 hours",
    ),
    _P(
        24,
        4,
        "Gynecomastia surgery",
        "Male breast reduction by liposuction and gland excision.",
        (4000, 8000),
        "1-2 weeks",
        "1-2 hours",
    ),
    # Facial surgery
    _P(
        25,
        5,
        "Rhinoplasty",
        "Reshapes the nose for balance and, if needed, better breathing.",
        (7000, 15000),
        "1-2 weeks",
        "2-3 hours",
    ),
    _P(
        26,
        5,
        "Facelift",
        "Lifts the deeper tissues of the lower face and neck.",
        (12000, 25000),
        "2-3 weeks",
        "3-5 hours",
    ),
    _P(
        27,
        5,
        "Eyelid surgery",
        "Blepharoplasty removes excess skin and fat from the eyelids.",
        (4000, 8000),
        "1-2 weeks",
        "1-2 hours",
    ),
    _P(
        28,
        5,
        "Brow lift",
        "Raises a low or heavy brow to open up the eyes.",
        (5000, 10000),
        "1-2 weeks",
        "1-2 hours",
    ),
    _P(
        29,
        5,
        "Ear pinning",
        "Otoplasty sets prominent ears closer to the head.",
        (3500, 7000),
        "1 week",
        "1-2 hours",
    ),
    _P(
        30,
        5,
        "Chin augmentation",
        "An implant or bone reshaping strengthens a weak chin.",
        (3000, 7000),
        "1 week",
        "1 hour",
    ),
    # Hair restoration
    _P(
        31,
        6,
        "FUE hair transplant",
        "Individual follicles are moved to thinning areas with tiny dot scars.",
        (5000, 15000),
        "7-10 days",
        "6-8 hours",
    ),
    _P(
        32,
        6,
        "FUT hair transplant",
        "A strip of scalp provides many grafts in one session.",
        (4000, 12000),
        "10-14 days",
        "4-8 hours",
    ),
    _P(
        33,
        6,
        "PRP scalp injections",
        "Platelet-rich plasma from your blood stimulates weak follicles.",
        (500, 1200),
        "None",
        "1 hour",
    ),
    _P(
        34,
        6,
        "Eyebrow transplant",
        "Grafts restore sparse or over-plucked brows.",
        (3000, 6000),
        "7 days",
        "3-4 hours",
    ),
    _P(
        35,
        6,
        "Low-level laser therapy",
        "Red light sessions that support hair growth.",
        (1500, 3000),
        "None",
        "20 minutes",
    ),
    _P(
        36,
        6,
        "Beard transplant",
        "Fills patchy beards with grafts from the back of the scalp.",
        (4000, 8000),
        "7 days",
        "4-6 hours",
    ),
    # Hair removal
    _P(
        37,
        7,
        "Laser hair removal: face",
        "Diode or Nd:YAG laser for upper lip, chin and cheeks.",
        (100, 300),
        "None",
        "15 minutes",
    ),
    _P(
        38,
        7,
        "Laser hair removal: legs",
        "Full or half legs over six to eight sessions.",
        (300, 800),
        "None",
        "45 minutes",
    ),
    _P(
        39,
        7,
        "Laser hair removal: underarms",
        "Quick sessions for smooth underarms.",
        (100, 250),
        "None",
        "10 minutes",
    ),
    _P(
        40,
        7,
        "Laser hair removal: bikini",
        "Bikini line or full Brazilian.",
        (150, 400),
        "None",
        "20 minutes",
    ),
    _P(
        41,
        7,
        "Electrolysis",
        "Permanent hair removal, one hair at a time, for any hair colour.",
        (50, 150),
        "None",
        "15-60 minutes",
    ),
    _P(
        42,
        7,
        "Full body laser hair removal",
        "Every area in one course of treatment.",
        (800, 2500),
        "None",
        "2 hours",
    ),
    # Medical skincare
    _P(
        43,
        8,
        "HydraFacial",
        "Cleanses, exfoliates and hydrates in one painless session.",
        (150, 300),
        "None",
        "45 minutes",
    ),
    _P(
        44,
        8,
        "Acne treatment programme",
        "A dermatologist-led plan combining peels, extractions and prescriptions.",
        (300, 900),
        "None",
        "3 months",
    ),
    _P(
        45,
        8,
        "Microneedling",
        "Controlled micro-injuries trigger collagen for firmer skin and smaller pores.",
        (250, 700),
        "1-3 days of redness",
        "1 hour",
    ),
    _P(
        46,
        8,
        "LED light therapy",
        "Blue and red light calm acne and inflammation.",
        (50, 150),
        "None",
        "20 minutes",
    ),
    _P(
        47,
        8,
        "Medical-grade facial",
        "A facial tailored to your skin by a clinician.",
        (120, 250),
        "None",
        "1 hour",
    ),
    _P(
        48,
        8,
        "Rosacea laser treatment",
        "Vascular laser that reduces persistent facial redness.",
        (400, 800),
        "1-2 days",
        "30 minutes",
    ),
    # Dental aesthetics
    _P(
        49,
        9,
        "Porcelain veneers",
        "Thin shells bonded to the front teeth to change colour and shape.",
        (900, 2500),
        "None",
        "2-3 visits",
    ),
    _P(
        50,
        9,
        "Teeth whitening",
        "In-clinic whitening several shades lighter in one visit.",
        (300, 1000),
        "None",
        "1 hour",
    ),
    _P(
        51,
        9,
        "Composite bonding",
        "Tooth-coloured resin repairs chips and gaps.",
        (250, 600),
        "None",
        "1 hour per tooth",
    ),
    _P(
        52,
        9,
        "Clear aligners",
        "Removable aligners straighten teeth over months instead of years.",
        (3000, 7000),
        "None",
        "6-18 months",
    ),
    _P(
        53,
        9,
        "Gum contouring",
        "Reshapes the gum line for a less gummy smile.",
        (500, 3000),
        "2-3 days",
        "1 hour",
    ),
    _P(
        54,
        9,
        "Dental implants",
        "Titanium roots and crowns replace missing teeth.",
        (3000, 5000),
        "3-6 months of healing",
        "2 visits",
    ),
    # Vein treatments
    _P(
        55,
        10,
        "Sclerotherapy",
        "Injections close spider veins on the legs.",
        (350, 700),
        "None",
        "30 minutes",
    ),
    _P(
        56,
        10,
        "Endovenous laser ablation",
        "A laser fibre seals varicose veins from the inside.",
        (2000, 4000),
        "1-2 days",
        "1 hour",
    ),
    _P(
        57,
        10,
        "Radiofrequency vein ablation",
        "Heat closes faulty veins with little discomfort.",
        (2000, 4500),
        "1-2 days",
        "1 hour",
    ),
    _P(
        58,
        10,
        "Facial thread vein removal",
        "Fine laser or cautery for broken capillaries on the face.",
        (200, 500),
        "None",
        "20 minutes",
    ),
    _P(
        59,
        10,
        "Foam sclerotherapy",
        "Ultrasound-guided foam treats larger veins.",
        (600, 1500),
        "1 day",
        "45 minutes",
    ),
    _P(
        60,
        10,
        "Ambulatory phlebectomy",
        "Bulging veins removed through tiny incisions.",
        (1500, 3000),
        "2-3 days",
        "1 hour",
    ),
    # Skin tightening
    _P(
        61,
        11,
        "HIFU lifting",
        "Focused ultrasound tightens the foundation layer of the face and neck.",
        (1500, 4000),
        "None",
        "60-90 minutes",
    ),
    _P(
        62,
        11,
        "Radiofrequency skin tightening",
        "Heats the dermis to firm skin over a course of sessions.",
        (1000, 3000),
        "None",
        "45 minutes",
    ),
    _P(
        63,
        11,
        "RF microneedling",
        "Microneedles deliver radiofrequency deep into the skin for tightening and scars.",
        (800, 1500),
        "2-3 days",
        "1 hour",
    ),
    _P(
        64,
        11,
        "PDO thread lift",
        "Dissolvable threads lift the cheeks and jowls without surgery.",
        (1500, 4500),
        "3-7 days",
        "1 hour",
    ),
    _P(
        65,
        11,
        "Body skin tightening",
        "Radiofrequency for loose skin on the tummy, arms and thighs.",
        (1000, 3500),
        "None",
        "1 hour",
    ),
    _P(
        66,
        11,
        "Neck tightening",
        "Combined energy treatments for crepey neck skin.",
        (1200, 3000),
        "1-2 days",
        "1 hour",
    ),
    # Pigmentation and scars
    _P(
        67,
        12,
        "Acne scar subcision",
        "Releases tethered scars so the skin surface lifts.",
        (400, 1000),
        "3-5 days of bruising",
        "45 minutes",
    ),
    _P(
        68,
        12,
        "Melasma treatment",
        "Combined topical, peel and low-energy laser plan for melasma.",
        (500, 1500),
        "None",
        "3-6 months",
    ),
    _P(
        69,
        12,
        "Laser tattoo removal",
        "Picosecond laser breaks ink into particles the body clears.",
        (200, 500),
        "1 week",
        "15-30 minutes",
    ),
    _P(
        70,
        12,
        "Sun spot removal",
        "Q-switched laser fades age and sun spots.",
        (200, 600),
        "5-7 days",
        "20 minutes",
    ),
    _P(
        71,
        12,
        "Stretch mark treatment",
        "Laser and microneedling improve colour and texture of stretch marks.",
        (500, 2000),
        "1-3 days",
        "1 hour",
    ),
    _P(
        72,
        12,
        "Scar revision surgery",
        "Surgical repair that makes a scar smaller and less visible.",
        (1500, 5000),
        "1-2 weeks",
        "1-2 hours",
    ),
)

# Which categories each specialty works in; a doctor's procedures are picked from them.
_SPECIALTIES: dict[str, tuple[int, ...]] = {
    "Plastic surgeon": (3, 4, 5),
    "Facial plastic surgeon": (5, 1, 11),
    "Dermatologist": (2, 8, 12),
    "Cosmetic dermatologist": (1, 2, 11),
    "Aesthetic physician": (1, 11, 8),
    "Hair restoration surgeon": (6,),
    "Laser specialist": (7, 2, 12),
    "Cosmetic dentist": (9,),
    "Vascular surgeon": (10,),
    "Oculoplastic surgeon": (5, 1),
    "Aesthetic nurse practitioner": (1, 8, 7),
}

_DOCTOR_ROWS: tuple[tuple[str, str, str, int, float], ...] = (
    ("Dr. Amelia Hart", "Plastic surgeon", "New York", 18, 4.9),
    ("Dr. Rafael Ortiz", "Facial plastic surgeon", "Miami", 14, 4.8),
    ("Dr. Priya Raman", "Dermatologist", "Chicago", 11, 4.7),
    ("Dr. Daniel Okafor", "Cosmetic dermatologist", "Houston", 9, 4.6),
    ("Dr. Sophie Laurent", "Aesthetic physician", "Los Angeles", 7, 4.8),
    ("Dr. Marcus Chen", "Hair restoration surgeon", "San Francisco", 16, 4.9),
    ("Dr. Hannah Weiss", "Laser specialist", "Seattle", 8, 4.5),
    ("Dr. Omar Haddad", "Cosmetic dentist", "Dallas", 12, 4.7),
    ("Dr. Laura Bianchi", "Vascular surgeon", "Boston", 20, 4.8),
    ("Dr. Kenji Watanabe", "Oculoplastic surgeon", "San Diego", 13, 4.9),
    ("Nina Petrova, NP", "Aesthetic nurse practitioner", "Austin", 6, 4.6),
    ("Dr. Isabel Moreno", "Plastic surgeon", "Los Angeles", 22, 4.7),
    ("Dr. Thomas Becker", "Facial plastic surgeon", "Chicago", 15, 4.6),
    ("Dr. Aisha Bello", "Dermatologist", "Atlanta", 10, 4.9),
    ("Dr. Lucas Ferreira", "Cosmetic dermatologist", "Miami", 8, 4.5),
    ("Dr. Emily Novak", "Aesthetic physician", "Denver", 5, 4.7),
    ("Dr. Arjun Mehta", "Hair restoration surgeon", "New York", 12, 4.8),
    ("Dr. Chloe Dubois", "Laser specialist", "Boston", 9, 4.6),
    ("Dr. Samuel Levi", "Cosmetic dentist", "New York", 17, 4.9),
    ("Dr. Grace Kim", "Vascular surgeon", "Seattle", 11, 4.5),
    ("Dr. Mateo Rossi", "Oculoplastic surgeon", "Phoenix", 14, 4.7),
    ("Jade Thompson, NP", "Aesthetic nurse practitioner", "Nashville", 4, 4.8),
    ("Dr. Victoria Stone", "Plastic surgeon", "Dallas", 19, 4.8),
    ("Dr. Hiro Tanaka", "Facial plastic surgeon", "San Francisco", 10, 4.9),
    ("Dr. Fatima Zahra", "Dermatologist", "Houston", 13, 4.6),
    ("Dr. Ethan Brooks", "Cosmetic dermatologist", "Philadelphia", 7, 4.4),
    ("Dr. Olivia Grant", "Aesthetic physician", "Miami", 9, 4.7),
    ("Dr. Nikolai Ivanov", "Hair restoration surgeon", "Chicago", 21, 4.6),
    ("Dr. Mei Lin", "Laser specialist", "Los Angeles", 12, 4.8),
    ("Dr. Carlos Mendes", "Cosmetic dentist", "Miami", 8, 4.6),
    ("Dr. Rachel Adler", "Plastic surgeon", "Boston", 16, 4.9),
    ("Dr. Yusuf Demir", "Facial plastic surgeon", "New York", 11, 4.7),
    ("Dr. Anna Kowalska", "Dermatologist", "Denver", 6, 4.8),
    ("Dr. Benjamin Hale", "Cosmetic dermatologist", "Austin", 14, 4.7),
    ("Dr. Zoe Martin", "Aesthetic physician", "Seattle", 8, 4.5),
    ("Dr. Ravi Shankar", "Vascular surgeon", "Atlanta", 18, 4.7),
    ("Dr. Elena Popescu", "Oculoplastic surgeon", "Los Angeles", 9, 4.8),
    ("Maya Cohen, NP", "Aesthetic nurse practitioner", "San Diego", 7, 4.9),
    ("Dr. William Foster", "Plastic surgeon", "Houston", 25, 4.6),
    ("Dr. Leila Nasser", "Laser specialist", "Dallas", 10, 4.7),
    ("Dr. Jonas Berg", "Hair restoration surgeon", "Miami", 9, 4.5),
    ("Dr. Camille Roux", "Cosmetic dentist", "Chicago", 13, 4.8),
    ("Dr. Henry Walsh", "Dermatologist", "Philadelphia", 24, 4.6),
    ("Dr. Sara Lindqvist", "Facial plastic surgeon", "Denver", 12, 4.9),
    ("Dr. Diego Alvarez", "Aesthetic physician", "Phoenix", 6, 4.6),
)


def _doctor_procedures(doctor_id: int, specialty: str, rank: int) -> tuple[int, ...]:
    """Five to seven procedures of the specialty; colleagues of one specialty cover the rest."""
    pool = [p.id for c in _SPECIALTIES[specialty] for p in PROCEDURES if p.category_id == c]
    count = min(len(pool), 5 + doctor_id % 3)
    start = (rank * 6) % len(pool)
    return tuple(sorted((pool[start:] + pool[:start])[:count]))


def _doctors() -> tuple[_Doctor, ...]:
    seen: dict[str, int] = {}
    out: list[_Doctor] = []
    for i, (name, specialty, city, years, rating) in enumerate(_DOCTOR_ROWS, start=1):
        rank = seen[specialty] = seen.get(specialty, -1) + 1
        procedures = _doctor_procedures(i, specialty, rank)
        out.append(_Doctor(i, name, specialty, city, years, rating, procedures))
    return tuple(out)


DOCTORS: tuple[_Doctor, ...] = _doctors()

PACKAGES: tuple[_Package, ...] = (
    _Package(
        1,
        "Glow package",
        "A HydraFacial, LED therapy and a light peel: skin that looks rested for an event.",
        (43, 46, 7),
        420,
        3,
    ),
    _Package(
        2,
        "Liquid facelift",
        "Cheek and tear trough filler with Botox, planned together for a natural lift.",
        (3, 4, 1),
        2100,
        2,
    ),
    _Package(
        3,
        "Mommy makeover",
        "Tummy tuck, breast lift and liposuction in one operation.",
        (14, 20, 13),
        19500,
        1,
    ),
    _Package(
        4,
        "Smile makeover",
        "Whitening, gum contouring and six porcelain veneers.",
        (50, 53, 49),
        9800,
        4,
    ),
    _Package(
        5,
        "Hair regrowth plan",
        "Three PRP sessions with a year of low-level laser therapy.",
        (33, 35),
        2400,
        6,
    ),
    _Package(
        6,
        "Smooth summer",
        "Laser hair removal for legs, underarms and bikini line, six sessions each.",
        (38, 39, 40),
        1100,
        6,
    ),
    _Package(
        7,
        "Clear skin reset",
        "Acne programme, microneedling and subcision for active acne and its scars.",
        (44, 45, 67),
        1500,
        5,
    ),
    _Package(
        8,
        "Jawline and neck refresh",
        "Masseter Botox, jawline filler and neck tightening.",
        (6, 5, 66),
        3300,
        3,
    ),
    _Package(
        9,
        "Leg vein clinic",
        "Sclerotherapy with radiofrequency ablation for varicose and spider veins.",
        (55, 57),
        3900,
        3,
    ),
    _Package(
        10,
        "Even tone plan",
        "IPL, sun spot removal and a melasma plan for uneven pigmentation.",
        (11, 70, 68),
        1700,
        4,
    ),
)


def _price(low: int, high: int) -> str:
    return f"${low:,}-${high:,}"


def build_catalog() -> Catalog:
    """The demo's catalog as penchant's :class:`~penchant.Catalog`."""
    category_names = {c.id: c.name for c in CATEGORIES}
    categories = [
        Category(c.id, c.name, slug=c.slug, keywords=c.keywords, url=f"/categories/{c.id}")
        for c in CATEGORIES
    ]
    items: list[Item] = []
    for p in PROCEDURES:
        items.append(
            Item(
                "procedure",
                p.id,
                p.name,
                category_ids=(p.category_id,),
                url=f"/procedures/{p.id}",
                attributes={
                    "description": p.description,
                    "price": _price(*p.price),
                    "price_min": p.price[0],
                    "price_max": p.price[1],
                    "recovery": p.recovery,
                    "duration": p.duration,
                    "category": category_names[p.category_id],
                },
            )
        )
    for d in DOCTORS:
        items.append(
            Item(
                "doctor",
                d.id,
                d.name,
                procedure_ids=d.procedure_ids,
                url=f"/doctors/{d.id}",
                attributes={
                    "specialty": d.specialty,
                    "city": d.city,
                    "years": d.years,
                    "rating": d.rating,
                    "description": f"{d.specialty} in {d.city}, {d.years} years in practice.",
                },
            )
        )
    for k in PACKAGES:
        items.append(
            Item(
                "package",
                k.id,
                k.name,
                procedure_ids=k.procedure_ids,
                url=f"/packages/{k.id}",
                attributes={
                    "description": k.description,
                    "price": f"${k.price:,}",
                    "sessions": k.sessions,
                },
            )
        )
    return Catalog(categories=categories, items=items)
