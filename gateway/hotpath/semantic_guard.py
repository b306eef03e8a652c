"""Verification step of the semantic response cache: may the answer cached for `cached` be served
for `query`, whose MiniLM embedding is close? Cosine alone scores near misses like paraphrases
("capital of France" / "of Germany" 0.91, "km to miles" / "miles to km" 0.99), so both prompts are
normalised (contractions, number words, general synonym groups and idioms, unit/language/country
aliases and abbreviations, framing phrases, light stemming) and compared word by word, a misspelling
(one edit from a word on the other side, not two words the lexicon knows) counting as a match. A hit is rejected when numbers, operators, polarity (not, without) or
quoted text differ; when a word is replaced by another of its class (place, language, tool, unit,
date, superlative, style, format, name), by its antonym, or by any other specific word; when a name,
date or style appears on one side only, or a modifier or condition is added ("a remote branch",
"in a microwave"); when an order flips ("X to Y", "did X beat Y", "X faster than Y"). Otherwise each
word found on one side only raises the cosine required above `threshold`. Pure Python, deterministic,
memoised per prompt; tuned with benchmarks/semantic_guard_eval.py on tests/data/cache_pairs_dev.jsonl
and cache_pairs_dev_b.jsonl.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

GUARD_THRESHOLD: float = 0.76

# extra cosine required per content word found on one side only
_PER_GENERIC = 0.01
_PER_SPECIFIC = 0.06
_MAX_REQUIRED = 0.995


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------- word lists

STOPWORDS = _words("""
a an the and or but if then else of to in on at by for with from into onto upon about as
is are was were be been being am do does did doing done have has had having
i me my mine myself you your yours yourself u ur he him his she her hers it its itself we our ours
they them their theirs this that these those there here what which who whom whose when where
why how will would shall should can could may might must so than too very just also some any
each every such own same other another only again once all both either much many lot lots
whether while during until till via per between vs versus among within across through
even though although still yet already ever anyway
s t d ll re ve us
""")

# framing words that do not change what is asked
LIGHT = _words("""
please pls plz kindly thanks thx hi hey hello ok okay tell explain explanation describe description
define definition clarify elaborate give show provide share suggest recommend recommendation help
want wanna need know wonder curious question answer exactly actually really basically just maybe
possibly generally usually typically normally way ways method methods step steps instruction
instructions tip tips guide tutorial process procedure approach thing things stuff something anything
someone somebody meaning mean means got get gets getting go goes going able possible
whats im youre dont cant wont like kind sort type example examples idea ideas
some few several various proper properly correct correctly
advice suggestion suggestions pointer pointers hint hints trick tricks recommendations
""")

# common verbs/nouns/adjectives that rarely carry the point of a question
GENERIC = _words("""
make use find see check look work say think try keep put take come call learn happen write
person people one name main common popular famous well known typical usual general specific
real actual basic easy important similar same whole full complete command syntax implementation
implement handle deal good great nice differ convert translate compute concept notion topic subject
acronym term consider up down out off after before above below over under inside outside since
recipe
""")

NEGATIONS = _words("not no never without none nothing nobody nowhere neither nor cannot")

# surface word -> canonical word (applied before stemming)
SYNONYMS: dict[str, str] = {
    "big": "large", "bigger": "larger", "biggest": "largest", "huge": "large",
    "little": "small", "tiny": "small", "littlest": "smallest",
    "tallest": "highest", "quickest": "fastest", "quicker": "faster", "rapid": "fast", "speedy": "fast",
    "mom": "mother", "mum": "mother", "mommy": "mother", "dad": "father", "daddy": "father",
    "kid": "child", "kids": "children", "children": "child",
    "average": "mean", "create": "make", "build": "make", "generate": "make", "produce": "make",
    "compose": "make", "craft": "make", "creating": "make", "building": "make", "generating": "make",
    "repair": "fix", "solve": "fix", "resolve": "fix", "fixing": "fix", "repairing": "fix",
    "delete": "remove", "erase": "remove", "eliminate": "remove", "deleting": "remove",
    "begin": "start", "commence": "start", "prevent": "stop", "display": "show",
    "utilize": "use", "utilise": "use", "using": "use", "purchase": "buy", "assist": "help",
    "require": "need", "photo": "image", "picture": "image", "pic": "image", "pics": "image",
    "photos": "image", "pictures": "image", "images": "image", "film": "movie", "films": "movie",
    "automobile": "car", "tyre": "tire", "tyres": "tire", "error": "bug", "errors": "bug",
    "issue": "bug", "issues": "bug", "problem": "bug", "problems": "bug", "mistake": "bug",
    "inexpensive": "cheap", "affordable": "cheap", "pricey": "expensive", "costly": "expensive",
    "modify": "change", "alter": "change", "edit": "change", "calculate": "compute",
    "calculating": "compute", "computing": "compute", "reply": "answer", "respond": "answer",
    "vs": "differ", "versus": "differ", "difference": "differ", "differences": "differ",
    "different": "differ", "differs": "differ", "compare": "differ", "comparison": "differ",
    "distinguish": "differ", "contrast": "differ", "simply": "simple", "daily": "day",
    "everyday": "day", "dict": "dictionary", "dicts": "dictionary", "str": "string", "int": "integer",
    "ints": "integer", "regexp": "regex", "regexes": "regex", "repo": "repository", "config": "configuration",
    "app": "application", "apps": "application", "docs": "documentation", "info": "information",
    "temp": "temperature", "js": "javascript", "ts": "typescript", "py": "python",
    "postgres": "postgresql", "psql": "postgresql", "k8s": "kubernetes", "mac": "macos", "osx": "macos",
    "db": "database", "dbs": "database", "fn": "function", "func": "function",
    "wrote": "write", "written": "write", "writer": "write", "writing": "write",
    "teenager": "teen", "teenagers": "teen",
    "kilometre": "km", "kilometres": "km", "kilometer": "km", "kilometers": "km",
    "mile": "mile", "miles": "mile", "mi": "mile", "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm",
    "millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
    "inch": "inch", "inches": "inch", "foot": "ft", "feet": "ft", "yard": "yd", "yards": "yd",
    "kilogram": "kg", "kilograms": "kg", "kilo": "kg", "kilos": "kg", "kgs": "kg", "gram": "g",
    "grams": "g", "gr": "g", "milligram": "mg", "milligrams": "mg", "pound": "lb", "pounds": "lb",
    "lbs": "lb", "ounce": "oz", "ounces": "oz", "stones": "stone", "ton": "ton", "tons": "ton",
    "tonne": "ton", "tonnes": "ton", "liter": "l", "liters": "l", "litre": "l", "litres": "l",
    "milliliter": "ml", "milliliters": "ml", "millilitre": "ml", "millilitres": "ml",
    "gallon": "gal", "gallons": "gal", "quart": "qt", "quarts": "qt", "pint": "pt", "pints": "pt",
    "cups": "cup", "tablespoon": "tbsp", "tablespoons": "tbsp", "tbs": "tbsp", "teaspoon": "tsp",
    "teaspoons": "tsp", "celcius": "celsius", "centigrade": "celsius", "farenheit": "fahrenheit",
    "kelvins": "kelvin", "degree": "degree", "degrees": "degree", "sec": "second",
    "secs": "second", "seconds": "second", "minutes": "minute", "mins": "minute", "min": "minute",
    "hours": "hour", "hr": "hour", "hrs": "hour", "days": "day", "weeks": "week", "months": "month",
    "years": "year", "yr": "year", "yrs": "year", "decades": "decade", "centuries": "century",
    "millisecond": "ms", "milliseconds": "ms", "microsecond": "us_", "microseconds": "us_",
    "nanosecond": "ns", "nanoseconds": "ns", "bytes": "byte", "kilobyte": "kb", "kilobytes": "kb",
    "megabyte": "mb", "megabytes": "mb", "gigabyte": "gb", "gigabytes": "gb", "terabyte": "tb",
    "terabytes": "tb", "bits": "bit", "acres": "acre", "hectares": "hectare", "ha": "hectare",
    "calories": "calorie", "kcal": "calorie", "cal": "calorie", "joules": "joule", "watts": "watt",
    "kilowatt": "kw", "kilowatts": "kw", "volts": "volt", "amps": "amp", "ampere": "amp",
    "dollar": "usd", "dollars": "usd", "bucks": "usd", "euro": "eur", "euros": "eur", "gbp": "gbp",
    "sterling": "gbp", "jpy": "yen", "yuan": "cny", "rmb": "cny", "renminbi": "cny", "rupee": "inr",
    "rupees": "inr", "pesos": "peso", "francs": "franc", "rubles": "ruble", "roubles": "ruble",
    "btc": "bitcoin", "kph": "kmh", "kmph": "kmh", "mps": "mps",
    "colour": "color", "colours": "color", "flavour": "flavor", "favour": "favor", "favourite": "favorite",
    "behaviour": "behavior", "honour": "honor", "humour": "humor", "neighbour": "neighbor",
    "labour": "labor", "harbour": "harbor", "centre": "center", "theatre": "theater", "grey": "gray",
    "programme": "program", "catalogue": "catalog", "dialogue": "dialog", "aluminium": "aluminum",
    "acetaminophen": "paracetamol", "cellphone": "phone", "smartphone": "phone",
    "pc": "computer", "sofa": "couch", "fridge": "refrigerator",
    "www": "web", "website": "site", "webpage": "page", "e-mail": "email", "emails": "email",
    "approximately": "about", "roughly": "about", "around": "about",
    "wwii": "ww2", "wwi": "ww1", "c_": "celsius", "f_": "fahrenheit", "k_": "kelvin",
    "short": "brief", "concise": "brief", "opposite": "antonym", "opposites": "antonym",
    "combine": "merge", "combining": "merge", "join": "merge", "role": "position", "job": "position",
    "coworker": "colleague", "coworkers": "colleague", "co-worker": "colleague", "count": "number",
    "amount": "number", "quantity": "number", "request": "ask", "requesting": "ask", "latest": "last",
    "alternative": "substitute", "replacement": "substitute", "substitution": "substitute",
    "draft": "write", "note": "message", "notes": "message", "affect": "impact", "affects": "impact", "influence": "impact", "whom": "who",
}
# frequent misspellings
SYNONYMS.update({
    "diffrence": "difference", "differnce": "difference", "recieve": "receive", "seperate": "separate",
    "definately": "definitely", "wich": "which", "teh": "the", "wat": "what", "becuase": "because",
    "beacuse": "because", "untill": "until", "wierd": "weird", "thier": "their", "adress": "address",
    "begining": "beginning", "beleive": "believe", "calender": "calendar", "enviroment": "environment",
    "goverment": "government", "independant": "independent", "pronounciation": "pronunciation",
    "reccomend": "recommend", "recomend": "recommend", "tommorow": "tomorrow", "tomorow": "tomorrow",
    "writting": "writing", "occured": "occurred", "accomodation": "accommodation", "wether": "whether",
    "langauge": "language", "pyhton": "python", "javascirpt": "javascript", "fucntion": "function",
    "databse": "database", "algorithim": "algorithm", "exmaple": "example", "waht": "what", "hwo": "how",
})

# general-purpose synonym groups (the first word names the group); matched on stems, so inflected
# forms follow ("thawing", "thawed"). Antonyms stay apart (increase/decrease, accept/reject).
_SYNONYM_GROUPS = """
exit quit
defrost thaw unfreeze
decline refuse reject
increase raise boost improve enhance
decrease reduce lessen diminish
choose pick select
symptom sign indication
folder directory dir
substitute replace swap
fun interesting
vacation holiday
journey trip
fast quick quickly rapid rapidly speedy swift swiftly
stop cease halt
end finish
cancel abort
speak talk
understand comprehend grasp
teach educate
beginner novice newbie
allow permit
forbid prohibit ban
hire employ recruit
verify confirm
execute run
sort arrange
split separate
summarize summarise recap
prepare prep
chop cut
bad harm harmful detrimental
disease illness sickness
medicine medication
doctor physician
lawyer attorney
baby infant
friend buddy pal
student pupil
teacher instructor
company firm
salary wage
price cost
trash garbage rubbish
bathroom toilet restroom washroom
vegetable veggie veggies veg
luggage baggage
bike bicycle
motorcycle motorbike
truck lorry
petrol gasoline
highway motorway freeway
tv television
large massive enormous gigantic giant
wealthy rich
famous renowned notable
important crucial essential vital significant
main primary principal chief
cause reason
benefit advantage upside perk
drawback disadvantage downside
risk danger hazard
intelligent smart clever
stupid dumb
happy glad joyful
scared afraid frightened fearful
tired exhausted fatigued
sick ill unwell
weird strange bizarre
boring dull tedious
beautiful pretty lovely
hard difficult
dangerous unsafe hazardous risky
safe secure
polite courteous
rude impolite
funny humorous hilarious
quiet silent
loud noisy
damp moist
often frequently
sometimes occasionally
rarely seldom
immediately instantly
fully completely entirely
enough sufficient
annual yearly
purpose goal aim objective
environment env
variable var
parameter param
argument arg
library lib
package pkg
command cmd
message msg
duplicate dupe
anxious nervous
"""
SYNONYMS.update({
    "british": "uk", "brit": "uk", "american": "usa", "entire": "whole", "necessary": "need",
    "organise": "organize", "realise": "realize", "recognise": "recognize", "optimise": "optimize",
    "prioritise": "prioritize", "customise": "customize", "minimise": "minimize", "maximise": "maximize",
    "memorise": "memorize", "apologise": "apologize", "analyse": "analyze", "criticise": "criticize",
    "emphasise": "emphasize", "categorise": "categorize", "normalise": "normalize", "initialise": "initialize",
    "serialise": "serialize", "visualise": "visualize", "finalise": "finalize", "specialise": "specialize",
    "standardise": "standardize", "authorise": "authorize", "sanitise": "sanitize", "randomise": "randomize",
    "synchronise": "synchronize", "personalise": "personalize", "localise": "localize",
    "rumour": "rumor", "vapour": "vapor", "savour": "savor", "odour": "odor", "armour": "armor",
    "guacamole": "guacamole",
})

# critical words by class: a different word of the same class on each side rejects the hit
_CLASSES: dict[str, str] = {
    "country": """
afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas bahrain
bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria
burkina burundi cambodia cameroon canada chad chile china colombia comoros congo croatia cuba cyprus czechia
denmark djibouti dominica ecuador egypt eritrea estonia eswatini ethiopia fiji finland france gabon gambia
georgia germany ghana greece grenada guatemala guinea guyana haiti honduras hungary iceland india indonesia
iran iraq ireland israel italy jamaica japan jordan kazakhstan kenya kiribati kosovo kuwait kyrgyzstan laos
latvia lebanon lesotho liberia libya liechtenstein lithuania luxembourg madagascar malawi malaysia maldives
mali malta mauritania mauritius mexico micronesia moldova monaco mongolia montenegro morocco mozambique
myanmar burma namibia nauru nepal netherlands holland nicaragua niger nigeria macedonia norway oman pakistan
palau palestine panama paraguay peru philippines poland portugal qatar romania russia rwanda samoa
senegal serbia seychelles singapore slovakia slovenia somalia spain sudan suriname sweden switzerland
syria taiwan tajikistan tanzania thailand togo tonga trinidad tunisia turkey turkmenistan tuvalu uganda
ukraine uruguay uzbekistan vanuatu vatican venezuela vietnam yemen zambia zimbabwe usa uk eu uae
england scotland wales korea greenland
""",
    "region": """
africa asia europe antarctica oceania america americas caribbean scandinavia balkans arctic
middle_east latin_america north_america south_america central_america southeast_asia
california texas florida alaska hawaii ontario quebec bavaria siberia
""",
    "city": """
london paris berlin madrid rome milan venice florence naples barcelona lisbon porto amsterdam brussels
vienna prague budapest warsaw krakow athens istanbul moscow dublin edinburgh glasgow manchester
liverpool birmingham copenhagen stockholm oslo helsinki reykjavik zurich geneva munich frankfurt
hamburg cologne lyon marseille tokyo osaka kyoto seoul beijing shanghai shenzhen hong_kong
taipei singapore bangkok hanoi manila jakarta bali kuala_lumpur delhi mumbai bangalore kolkata
chennai karachi lahore dhaka kathmandu dubai doha riyadh tehran baghdad jerusalem tel_aviv cairo
marrakech casablanca lagos nairobi johannesburg cape_town sydney melbourne brisbane perth auckland
wellington toronto vancouver montreal ottawa calgary new_york los_angeles chicago houston phoenix
philadelphia san_antonio san_diego dallas austin seattle boston denver miami atlanta detroit
las_vegas san_francisco portland nashville orlando washington baltimore minneapolis pittsburgh
new_orleans brooklyn manhattan queens mexico_city cancun havana bogota lima santiago buenos_aires
rio sao_paulo caracas quito
""",
    "language": """
english french spanish german italian portuguese dutch russian ukrainian polish czech slovak hungarian
romanian bulgarian serbian croatian greek turkish arabic hebrew persian farsi urdu hindi bengali punjabi
tamil telugu marathi gujarati chinese mandarin cantonese japanese korean vietnamese thai indonesian
malay tagalog filipino swahili zulu amharic yoruba swedish norwegian danish finnish icelandic estonian
latvian lithuanian irish welsh gaelic latin esperanto catalan basque galician albanian armenian
georgian kazakh mongolian nepali sinhala burmese khmer lao american british canadian australian
mexican brazilian indian african european asian swiss scottish
""",
    "tech": """
python java javascript typescript kotlin scala rust ruby php perl haskell elixir erlang clojure lua dart
matlab fortran cobol bash zsh powershell sql nosql html css cpp csharp fsharp swift objective_c
solidity vba groovy ocaml webassembly golang
mysql postgresql sqlite mongodb redis cassandra elasticsearch dynamodb oracle mariadb firebase supabase
excel powerpoint outlook gmail slack jira confluence trello figma photoshop whatsapp instagram facebook
docker kubernetes git github gitlab bitbucket mercurial svn linux ubuntu debian fedora centos windows
macos ios android chrome firefox safari vscode vim emacs intellij pycharm xcode
numpy pandas scipy matplotlib tensorflow pytorch keras django flask fastapi
laravel react vue angular svelte nextjs nodejs deno jquery tailwind aws azure gcp heroku vercel
netlify nginx terraform ansible jenkins kafka rabbitmq graphql grpc
iphone ipad samsung macbook airpods kindle playstation xbox nintendo chatgpt openai
""",
    "unit": """
km mile m cm mm inch ft yd nautical mph kmh mps knot g kg mg lb oz stone ton l ml gal qt pt cup tbsp tsp
celsius fahrenheit kelvin degree second minute hour day week month year decade century ms us_ ns byte
kb mb gb tb bit kbps mbps gbps acre hectare calorie joule watt kw kwh volt amp psi bar pascal
usd eur gbp yen cny inr peso franc won ruble bitcoin percent
""",
    "reltime": "today tomorrow yesterday tonight now next last previous recent upcoming ago",
    "month": "january february march april may_ june july august september october november december",
    "weekday": "monday tuesday wednesday thursday friday saturday sunday weekday weekend",
    "season": "spring summer autumn fall winter",
    "daytime": "morning afternoon evening night midnight noon dawn dusk",
    "holiday": """
christmas easter halloween thanksgiving hanukkah ramadan diwali passover valentine new_year
""",
    "era": "medieval ancient modern victorian renaissance prehistoric colonial",
    "ordinal": "first final",
    "degree": """
largest smallest highest lowest shortest longest fastest slowest oldest youngest newest hottest coldest
warmest coolest deepest shallowest heaviest lightest richest poorest cheapest strongest weakest easiest
hardest safest healthiest busiest closest nearest farthest furthest widest narrowest best worst most
least greatest brightest darkest loudest quietest driest wettest densest thickest thinnest smartest
larger smaller higher lower shorter longer faster slower older younger newer hotter colder warmer cooler
deeper heavier lighter cheaper stronger weaker easier harder safer better worse more less fewer greater
maximum minimum max min top bottom
""",
    "style": """
formal casual informal funny humorous serious heartfelt emotional sarcastic polite rude friendly
professional technical detailed simple brief long step_by_step
""",
    "operator": "plus minus times divided power squared cubed root equals modulo percent",
    "format": """
sentence paragraph word page line bullets essay tweet post email letter memo report haiku sonnet limerick
poem song story joke table json yaml csv xml markdown html pdf numbered_list outline slide chart graph
diagram
""",
}
CLASS_OF: dict[str, str] = {w: cls for cls, words in _CLASSES.items() for w in words.split()}
# classes whose words must be present on both sides (a named thing, a date, a style asked for)
BOTH_SIDES_CLASSES = frozenset(
    {"country", "region", "city", "language", "tech", "proper", "holiday", "month", "weekday", "reltime", "style"}
)
# classes whose words keep their order ("from X to Y", "did X beat Y")
ORDERED_CLASSES = BOTH_SIDES_CLASSES | {"unit"}

# antonym pairs beyond the classes above (matched on canonical, stemmed words)
_ANTONYMS = """
increase:decrease raise:lower rise:fall gain:lose win:lose buy:sell add:remove enable:disable
lock:unlock zip:unzip encrypt:decrypt compress:decompress push:pull import:export upload:download
install:uninstall ascending:descending boil:freeze boiling:freezing melt:freeze pro:con
advantage:disadvantage benefit:drawback benefit:risk high:low hot:cold warm:cool legal:illegal
safe:dangerous good:bad accept:reject allow:block allow:deny open:close start:stop start:end
connect:disconnect show:hide expand:collapse maximize:minimize before:after above:below over:under
inside:outside positive:negative true:false male:female men:women man:woman north:south east:west
left:right up:down always:never include:exclude fast:slow early:late old:new young:old rich:poor
dark:light heavy:light hard:easy hard:soft wet:dry long:short tall:short wide:narrow thick:thin
strong:weak cheap:expensive healthy:unhealthy love:hate like:dislike agree:disagree subscribe:unsubscribe
follow:unfollow mount:unmount inhale:exhale input:output send:receive import:export plural:singular
synonym:antonym uppercase:lowercase upper:lower encode:decode serialize:deserialize sunrise:sunset
arrival:departure arrive:depart entrance:exit buyer:seller borrow:lend debit:credit profit:loss
import:export in:out on:off
"""
# negating prefix -> shortest stem it may negate ("unzip", "illegal"; not "intake", "income")
_NEG_PREFIXES = {"un": 3, "dis": 3, "non": 3, "anti": 3, "il": 4, "ir": 4, "in": 5, "im": 5, "de": 5, "mis": 5}

_NUM_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_NUM_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_NUM_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {
    "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
    "eleventh": 11, "twelfth": 12, "twentieth": 20, "hundredth": 100, "thousandth": 1000,
}
_ROMAN = {
    "ii": 2, "iii": 3, "iv": 4, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "xi": 11, "xii": 12,
    "xiii": 13, "xiv": 14, "xv": 15, "xvi": 16, "xvii": 17, "xviii": 18, "xix": 19, "xx": 20,
}

# words linking two entities without an order
SYMMETRIC = _words("and or vs versus between with & , / of")
_DETERMINERS = _words("a an the my your our their his her its this that these those some")

# --------------------------------------------------------------------------- regexes

_CHAR_MAP = str.maketrans({
    "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": " - ", "\u2014": " - ",
    "\u00d7": " times ", "\u00f7": " divided ", "\u20ac": " eur ", "\u00a3": " gbp ", "$": " usd ",
    "\u00a5": " yen ", "\u20b9": " inr ", "%": " percent ", "&": " and ", "\u2192": " to ",
})
_QUOTED = re.compile(r"""(?:(?<=^)|(?<=[\s(:\[]))(["'`])(.+?)\1(?=$|[\s.,?!:;)\]])""")
_CONTRACTION = re.compile(
    r"\b(can|won|shan|ain)'?t\b|n't\b|\b(is|are|was|were|do|does|did|has|have|had|could|would|should|must|need)nt\b"
    r"|\blet's\b|'(re|m|ll|ve|d|s)\b|(?<=s)'(?=\s|$)|\b(whats|hows|thats|im)\b",
    re.I,
)
_CONTRACTION_HINT = re.compile(r"'|\b(?:can|won|ain)t\b|nt\b|\b(?:whats|hows|thats|im)\b", re.I)
_CONTRACTION_WORDS = {"can": "can not", "won": "will not", "shan": "shall not", "ain": "is not"}
_CONTRACTION_SUFFIXES = {"re": " are", "m": " am", "ll": " will", "ve": " have", "d": " would", "s": " 's"}
_CONTRACTION_GLUED = {"whats": "what is", "hows": "how is", "thats": "that is", "im": "i am"}


def _expand_contraction(m: re.Match[str]) -> str:
    whole = m.group(0).lower()
    if m.group(1):
        return _CONTRACTION_WORDS[m.group(1).lower()]
    if whole == "n't":
        return " not"
    if m.group(2):
        return m.group(2) + " not"
    if whole == "let's":
        return "let us"
    if m.group(3):
        return _CONTRACTION_SUFFIXES[m.group(3).lower()]
    if m.group(4):
        return _CONTRACTION_GLUED.get(m.group(4).lower(), m.group(0))
    return " 's"  # plural possessive: "users' names"


# (substrings that must occur in the lowercased text, pattern, replacement): idioms, aliases and
# multi-word units mapped to one canonical form; a pattern only runs when one of its triggers occurs
# ("*": always)
_PHRASE_TABLE: list[tuple[str, str, str]] = [
    ("w/", r"\bw/o\b", " without "),
    ("w/", r"\bw/(?=\s|$)", " with "),
    ("and/or", r"\band/or\b", " or "),
    ("-free", r"\b(\w+)-free\b", r"without \1"),
    ("rid of", r"\bget(?:ting)? rid of\b", "remove"),
    ("regular expression", r"\bregular expressions?\b", "regex"),
    ("virtual env", r"\bvirtual env(?:ironment)?s?\b", "venv"),
    ("united states|u.s|usa", r"\b(?:the )?united states(?: of america)?\b|\bU\.?S\.?A?\.?(?=\W|$)", "USA"),
    ("united kingdom|britain|u.k.", r"\b(?:the )?united kingdom\b|\bgreat britain\b|\bbritain\b|\bU\.K\.", "UK"),
    ("nyc|new york city", r"\bnyc\b|\bnew york city\b", "new_york"),
    ("world war|ww", r"\bworld war (?:two|2|ii)\b|\bsecond world war\b|\bww ?2\b|\bwwii\b", "WW2"),
    ("world war|ww", r"\bworld war (?:one|1|i)\b|\bfirst world war\b|\bww ?1\b|\bwwi\b", "WW1"),
    ("sci|fiction", r"\bsci-?fi\b|\bscience fiction\b", "scifi"),
    ("to-do|todo", r"\bto-?do\b", "todo"),
    ("c++", r"\bc\+\+", "cpp"),
    ("c#", r"\bc#", "csharp"),
    ("f#", r"\bf#", "fsharp"),
    ("js", r"\b(node|next|vue|react)\.?js\b", r"\1js"),
    (".net", r"\.net\b", "dotnet"),
    ("objective-c", r"\bobjective-c\b", "objective_c"),
    ("code", r"\bvs ?code\b|\bvisual studio code\b", "vscode"),
    ("/h|hour", r"\bkm ?/ ?h\b|\bkilomet(?:er|re)s? (?:per|an|a) hour\b", "kmh"),
    ("/s|per second", r"\bm ?/ ?s\b|\bmet(?:er|re)s? per second\b", "mps"),
    ("hour", r"\bmiles (?:per|an|a) hour\b", "mph"),
    ("square|sq|m2", r"\bsquare (?:meters?|metres?)\b|\bsq\.? ?m\b|\bm2\b", "sqm"),
    ("square|sq", r"\bsquare (?:feet|foot)\b|\bsq\.? ?ft\b", "sqft"),
    ("square", r"\bsquare yards?\b", "sqyd"),
    ("square", r"\bsquare (?:kilomet(?:er|re)s?|km)\b", "sqkm"),
    ("square", r"\bsquare miles?\b", "sqmi"),
    ("fl", r"\bfluid ounces?\b|\bfl\.? ?oz\b", "floz"),
    ("per cent", r"\bper cent\b", "percent"),
    ("*", r"(\d)\s*°?\s*C\b", r"\1 celsius"),
    ("*", r"(\d)\s*°?\s*F\b", r"\1 fahrenheit"),
    ("°", r"°\s*C\b", " celsius "),
    ("°", r"°\s*F\b", " fahrenheit "),
    ("°", r"°", " degree "),
    (" c", r"\bF (to|in|into) C\b", r"fahrenheit \1 celsius"),
    (" f", r"\bC (to|in|into) F\b", r"celsius \1 fahrenheit"),
    ("heit|sius|kelvin", r"(fahrenheit|celsius|kelvin) (to|in|into) ([CFK])\b", r"\1 \2 \3_"),
    ("how come", r"\bhow come\b", "why"),
    ("as well as", r"\bas well as\b", "and"),
    ("in order to", r"\bin order to\b", "to"),
    ("known", r"\bwell[- ]known\b", "famous"),
    ("live", r"\bpeople (?:live|living) in\b", "population of"),
    ("how old|how ancient", r"\bhow (?:old|ancient) (?:is|are|was)\b", "age of"),
    ("how fast|how quick",
     r"\bhow (?:fast|quick(?:ly)?) (?:does|do|did|can|is|are) (.{1,30}?) (?:travel|move|go|run)\b", r"speed of \1"),
    ("how fast|how quick", r"\bhow (?:fast|quick(?:ly)?)\b", "speed of"),
    ("sqrt", r"\bsqrt\b", "square root"),
    ("how far", r"\bhow far\b", "distance"),
    ("how tall|how high", r"\bhow (?:tall|high)\b", "height of"),
    ("how heavy", r"\bhow heavy\b", "weight of"),
    ("how long|how much time", r"\bhow long\b|\bhow much time\b", "duration"),
    ("cost", r"\bhow much (?:does|do|is|are)?\s*(.{0,30}?)\s*cost\b", r"price of \1"),
    (" to", r"\b(?:is|are) (?:it )?(?:ok|okay|fine|alright) to\b", "can"),
    ("terms|english|words|language",
     r"\bin (?:simple|plain|layman'?s?) (?:terms|english|words|language)\b", " simple "),
    ("5|five",
     r"\b(?:to (?:me )?)?(?:like|as if|as though) (?:i am|i'm|im|i was|i were) (?:a )?(?:5|five)(?:[- ]years?[- ]old)?\b"
     r"|\bto a (?:5|five)[- ]years?[- ]old\b", " simple "),
    ("thank", r"\bthank[- ]you\b", "thank_you"),
    ("sentence|line",
     r"\b(?:in|with(?:in)?|using) (?:a few|a couple of) (?:sentences?|lines?)\b", " brief "),
    ("short|brief|concise|quick",
     r"\b(?:short|brief|concise|quick) (summary|overview|explanation|answer|description|recap)\b", r" brief \1"),
    ("short|brief|concise|succinct",
     r"\bshort and sweet\b|\bin short\b|\bconcisely\b|\bbriefly\b|\bsuccinct(?:ly)?\b", " brief "),
    ("detail|depth|thorough",
     r"\bin (?:great |more |full )?detail\b|\bin[- ]depth\b|\bthorough(?:ly)?\b|\bdetailed\b", " detailed "),
    ("list", r"\bnumbered list\b|\bordered list\b", " numbered_list "),
    ("bullet", r"\bbullet(?:ed)? (?:points?|list)\b|\bbullets\b", " bullets "),
    ("point", r"\b(boiling|freezing|melting|smoke|flash|dew) point\b", r"\1 temperature"),
    ("year|date", r"\b(?:what|which) (?:year|date)\b|\bin what year\b", " when "),
    ("last",
     r"\bhow (?:long|many (?:seconds|minutes|hours|days|weeks|months|years)) (?:does|do|will|would|did|can|could|should)"
     r" (.{1,40}?) (?:usually |typically |normally |generally )?last\b", r" duration \1 "),
    ("how many",
     r"\bhow many (?:seconds|minutes|hours|days|weeks|months|years) "
     r"(?=to|does|do|did|should|will|would|it|until|before|after|for)\b", " duration "),
    ("number of", r"(?:^|\b(?:the|a|total)\s+)number of\b", " how many "),
    ("wrote|author|written",
     r"\bwho (?:wrote|authored|is the author of|was the author of)\b|\bwritten by\b", " author of "),
    (" say", r"\bhow (?:do|would|can|should|could) (?:you|i|we|one) say\b", " translate "),
    ("come from", r"\bwhere (?:does|do|did) (.{1,40}?) come from\b", r" origin of \1 "),
    ("turn", r"\bturn(s|ed|ing)? (.{1,40}?) into\b", r"convert \2 into"),
    ("out of", r"\bget(?:ting)? (.{1,30}?) out of\b", r"remove \1 from"),
    ("most recent", r"\bmost recent\b", "last"),
    ("instead of", r"\b(?:use |using )?instead of\b", " substitute for "),
    ("list of lists", r"\blists? of lists\b", " nested list "),
    ("list|name",
     r"^\W*(?:(?:can|could|would) you |please |pls )?(?:list|name)\b|\b(?:give|show|tell) me a list of\b"
     r"|\ba list of\b", " "),
    ("better at", r"\bget(?:ting)? better at\b", " improve "),
    ("bit", r"\ba (?:little )?bit\b", " "),
    ("calculate|compute|work out|figure out",
     r"\bhow (?:do|can|would|should) (?:i|you|we|one) (?:calculate|compute|work out|figure out)\b"
     r"|\bhow to (?:calculate|compute|work out|figure out)\b", " calculate "),
    ("formula", r"(?<!chemical )(?<!molecular )\bformula (?:for|of|to calculate)\b", " calculate "),
    ("work out|figure out",
     r"\b(?:work|figure)(?:ing)? out (?=(?:my|your|the|a|an|his|her|their|our|its|this|that|how much|how many)\b)",
     " calculate "),
    ("speed", r"\bspeed(?:ing)? up\b", " make faster "),
    ("-long", r"\b(\w+)-long\b", r"\1"),
    ("let", r"\blet (?:us|me)\b", " "),
    ("for and against", r"\bfor and against\b", " pros and cons "),
    ("gist|nutshell", r"\b(?:what is |what's )?the gist of\b", " summarize "),
    ("gist|nutshell", r"\bin a nutshell\b|\bthe gist\b", " brief "),
    # framing: "the best way to X" asks for X; "the fastest way to X" asks for X fast
    ("way", r"\b(?:the )?(?:fastest|quickest) (?:way|method)s? (?:to|of)\b", " fast way to "),
    ("way", r"\b(?:the )?(?:best|right|correct|proper|ideal|recommended|good) (?:way|method)s? (?:to|of)\b", " way to "),
    # idioms and multi-word verbs
    ("made", r"\bhome[- ]?made\b", " home make "),
    ("packing list", r"\bpacking list\b", " pack "),
    ("turn", r"\bturn(?:s|ed|ing)? down (?!(?:the |my |your )?(?:volume|heat|music|sound|brightness|temperature|thermostat|"
     r"bass|radio|tv|lights?)\b)", " decline "),
    ("quit|give up|giving up|gave up",
     r"\b(?:quit(?:s|ting)?|g(?:i|a)v(?:e|es|ing) up) (?=\w+ing\b)", " stop "),
    ("cover", r"\bcover(?:s|ed|ing)? (?=\d)", " travel "),
    ("/dx", r"\bd\s*/\s*dx\b", " derivative of "),
    ("without los", r"\bwithout los(?:e|es|ing)\b", " keeping "),
    ("low|lack|deficient|shortage",
     r"\b(?:low (?:on|in)|lack(?:ing)?(?: of| in)?|deficient in|shortage of)\b", " deficiency "),
    ("sleep|asleep", r"\b(?:get(?:ting)? (?:some |enough |any )?sleep|fall(?:ing)? asleep|go(?:ing)? to sleep)\b", " sleep "),
    ("good for", r"\bgood for (?:you|your health|health|the body)\b", " benefit "),
    ("time of", r"\btime of (?:the )?year\b", " time "),
    ("season", r"\b(best|good|ideal|right|worst) season (?=to|for)\b", r"\1 time "),
    ("travel", r"\btravel(?:l?ing|l?ed|s)? to\b", " visit "),
    ("word", r"\b(?:an)?other words? (?:for|that means)\b|\bwords? that means?\b", " synonym for "),
    ("body mass", r"\bbody mass index\b", " BMI "),
    ("switch", r"\bswitch(?:es|ed|ing)? (on|off)\b", r" turn \1 "),
    ("throw", r"\bthr(?:o|e)w(?:s|ing|n)? up\b", " vomit "),
    ("prior to", r"\bprior to\b", " before "),
    ("right away", r"\bright away\b", " immediately "),
    ("cut", r"\bcut(?:s|ting)? (?:down|back) on\b", " reduce "),
    ("look after|take care of|taking care of",
     r"\b(?:look(?:s|ing)? after|tak(?:e|es|ing) care of)\b", " care for "),
    ("cope with", r"\bcop(?:e|es|ing) with\b", " deal with "),
    ("get over|getting over", r"\bget(?:ting)? over\b", " recover from "),
    ("-", r"\b([a-z]{1,2})-([a-z]{2,})\b", r"\1\2"),
    ("due to|owing to", r"\b(?:due|owing) to\b", " because of "),
    ("air condition", r"\bair[- ]condition(?:ing|er)\b", "AC"),
    ("fall", r"\b(in|during|this|last|next) (the )?fall\b", r"\1 \2autumn"),
]
_PHRASES: list[tuple[tuple[str, ...], re.Pattern[str], str]] = [
    (tuple(trigger.split("|")), re.compile(pattern, re.I), repl) for trigger, pattern, repl in _PHRASE_TABLE
]
_PHRASES_BY_TRIGGER: dict[str, set[int]] = {}
for _index, _phrase in enumerate(_PHRASES):
    for _trigger in _phrase[0]:
        _PHRASES_BY_TRIGGER.setdefault(_trigger, set()).add(_index)
_ALWAYS = frozenset(_PHRASES_BY_TRIGGER.pop("*", set()))
# one pass finds the triggers (longest first); a trigger inside a found one is found too
_TRIGGER_SCAN = re.compile(
    "(?=(" + "|".join(re.escape(t) for t in sorted(_PHRASES_BY_TRIGGER, key=len, reverse=True)) + "))"
)
_PHRASES_FOR_MATCH: dict[str, frozenset[int]] = {
    found: frozenset(i for t, ids in _PHRASES_BY_TRIGGER.items() if t in found for i in ids)
    for found in _PHRASES_BY_TRIGGER
}


def _rewrite_phrases(text: str) -> str:
    """Apply _PHRASES in order, skipping the patterns none of whose triggers occur."""
    done = -1
    while True:
        candidates = set(_ALWAYS)
        for found in _TRIGGER_SCAN.findall(text.lower()):
            candidates |= _PHRASES_FOR_MATCH[found]
        for i in sorted(i for i in candidates if i > done):
            done = i
            _, pattern, repl = _PHRASES[i]
            text, n = pattern.subn(repl, text)
            if n:
                break  # the text changed: look for triggers again
        else:
            return text


# digits: "10,000" -> 10000, "12x8" -> 12 times 8, "3rd" -> 3, "1960s" -> 1960, "10k" -> 10 thousand,
# "100g" -> 100 g; then hyphenated words are split ("3-day" -> 3 day)
_NUM_FIXES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<=\d),(?=\d{3}\b)"), ""),
    (re.compile(r"(\d)\s*[x*]\s*(?=\d)", re.I), r"\1 times "),
    (re.compile(r"\*\*|\^"), " power "),
    (re.compile(r"(?<=[\d\s])/(?=\s*\d)"), " divided "),
    (re.compile(r"(\d)(?:st|nd|rd|th)\b", re.I), r"\1"),
    (re.compile(r"(\d+)s\b"), r"\1"),
    (re.compile(r"(\d+(?:\.\d+)?)k\b", re.I), r"\1 thousand"),
    (re.compile(r"(\d)(?=[A-Za-z])"), r"\1 "),
    (re.compile(r"(?<=[A-Za-z])(?=\d)"), " "),
]
_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD_CHARS = re.compile(r"[a-z0-9]+")
_TOKEN = re.compile(r"[A-Za-z_]+(?:'[A-Za-z]+)?|'s\b|\d+(?:\.\d+)?|[+=<>\-]|[.?!:;,\"()/]")
_OPERATOR_WORDS = frozenset(_CLASSES["operator"].split()) - {"percent"}
_LINKS = SYMMETRIC | {"in", "for", "on", "at", "from", "by", "to", "into", "'s", "than", ":", "?", "."}
_COORDINATORS = _words("and or vs versus between & ,")
_UNORDERED_LINKS = _LINKS - {"to", "into", "than"}
_CAPITALISED_SENSE = {"us": "usa", "usa": "usa", "may": "may_", "go": "golang"}
_WH = frozenset({"who", "when", "where", "why"})
_SENTENCE_END = frozenset(".?!:;\"(")
# a noun naming what a tool is ("the vim editor", "an SQL query", "the Python language")
_TOOL_NOUNS = _words("""
editor query queries language library package framework app application program software tool command
platform database engine browser
""")
_OPERATOR_SYMBOLS = {"+": "plus", "=": "equals", "<": "less", ">": "greater", "-": "minus"}


# --------------------------------------------------------------------------- analysis


class _Token(NamedTuple):
    word: str  # canonical, stemmed; "" for punctuation and numbers
    raw: str  # lowercased surface form (or the punctuation itself)
    proper: bool
    number: float | None = None


@dataclass(frozen=True, slots=True)
class _Analysis:
    tokens: tuple[_Token, ...]
    numbers: Counter[float]
    number_order: tuple[float, ...]
    negations: int
    content: frozenset[str]
    proper: frozenset[str]
    operators: Counter[str]
    quoted: frozenset[str]
    pairs: tuple[tuple[frozenset[str], frozenset[str]], ...]
    particles: frozenset[tuple[str, str]]
    raw_words: frozenset[str]
    sequence: tuple[str, ...]  # the words in order, canonical where they have a canonical form
    wh: frozenset[str]


def _stem(word: str) -> str:
    if len(word) <= 3 or "_" in word:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
        word = word[:-1]
    for suffix in ("ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    elif word.endswith("y") and len(word) > 4 and word[-2] not in "aeiou":
        word = word[:-1]
    return word


@lru_cache(maxsize=65536)
def _canon(word: str) -> str:
    """Canonical form: synonym (a misspelling may map to a word that maps further), class word, stem."""
    word = SYNONYMS.get(word, word)
    word = SYNONYMS.get(word, word)
    if word in CLASS_OF:
        return word
    for suffix in ("es", "s", "ly"):  # plurals, adverbs ("politely" -> polite)
        if word.endswith(suffix) and word[: -len(suffix)] in CLASS_OF:
            return word[: -len(suffix)]
    stem = _stem(word)
    return _GROUP_OF.get(stem, stem)


def _group_map() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _SYNONYM_GROUPS.strip().splitlines():
        words = line.split()
        head = _stem(SYNONYMS.get(words[0], words[0]))
        for w in words:
            out.setdefault(_stem(SYNONYMS.get(w, w)), head)
    return out


_GROUP_OF: dict[str, str] = _group_map()


ANTONYM_PAIRS: frozenset[frozenset[str]] = frozenset(
    frozenset(_canon(w) for w in pair.split(":")) for pair in _ANTONYMS.split()
)
LIGHT_CANON = frozenset(_canon(w) for w in LIGHT) | LIGHT
GENERIC_CANON = frozenset(_canon(w) for w in GENERIC) | GENERIC
# words the lexicon knows (canonical): a one-letter difference between two of them is no typo
_KNOWN: frozenset[str] = frozenset(
    _canon(w)
    for w in (
        *STOPWORDS, *LIGHT, *GENERIC, *SYNONYMS, *SYNONYMS.values(), *CLASS_OF, *_SYNONYM_GROUPS.split(),
        *_ANTONYMS.replace(":", " ").split(),
    )
)
# real words one edit apart that are easily confused
_CONFUSABLE: frozenset[frozenset[str]] = frozenset(
    frozenset(_canon(w) for w in pair.split(":"))
    for pair in """
county:country desert:dessert angle:angel casual:causal complement:compliment principal:principle
quiet:quite later:latter advice:advise accept:except weather:whether breath:breathe trail:trial
united:untied marital:martial costume:custom cloth:clothe chose:choose lose:loose envelop:envelope
affect:effect rational:rationale moral:morale personal:personnel carton:cartoon statue:statute
""".split()
)


def _is_title_case(raw_words: list[str]) -> bool:
    long_words = [w for w in raw_words if len(w) > 3]
    return len(long_words) >= 4 and sum(w[0].isupper() for w in long_words) >= 0.8 * len(long_words)


def _number_value(digits: str) -> float:
    """A number's value; one with more digits than a float holds (an id, an account number)
    gets a value of its own derived from all its digits, so two that differ only in the
    17th digit still differ."""
    significant = digits.replace(",", "").lstrip("0").split(".")[0]
    if len(significant) <= 15:
        return float(digits.replace(",", ""))
    return float(int(hashlib.sha256(digits.encode()).hexdigest()[:12], 16)) + 0.5


def _numbers_from(words: list[str]) -> list[tuple[str, float | None]]:
    """Fold number words ("twenty five", "2 dozen", "a hundred") into numbers."""
    out: list[tuple[str, float | None]] = []
    i = 0
    while i < len(words):
        w = words[i]
        value: float | None = None
        j = i
        if w[0].isdigit() and _NUMBER.fullmatch(w):
            value = _number_value(w)
            j = i + 1
        elif w in _NUM_UNITS or w in _NUM_TENS:
            current = 0.0
            while j < len(words) and (words[j] in _NUM_UNITS or words[j] in _NUM_TENS):
                current += _NUM_UNITS.get(words[j], 0) + _NUM_TENS.get(words[j], 0)
                j += 1
            value = current
        elif w in _ORDINALS:
            value, j = float(_ORDINALS[w]), i + 1
        elif w == "dozen":
            value, j = 12.0, i + 1
        elif w in _NUM_SCALES and (i == 0 or words[i - 1] in ("a", "one")):
            value, j = float(_NUM_SCALES[w]), i + 1
        if value is None:
            out.append((w, None))
            i += 1
            continue
        while j < len(words) and (words[j] in _NUM_SCALES or words[j] == "dozen"):
            value *= 12 if words[j] == "dozen" else _NUM_SCALES[words[j]]
            j += 1
        out.append((w, value))
        i = j
    return out


@lru_cache(maxsize=8192)
def _analyse(text: str) -> _Analysis:
    text = text.translate(_CHAR_MAP)
    lower = text.lower()
    quoted = frozenset(w for m in _QUOTED.finditer(text) for w in _WORD_CHARS.findall(m.group(2).lower()))
    raw_words = frozenset(_WORD_CHARS.findall(lower))
    if _CONTRACTION_HINT.search(text):
        text = _CONTRACTION.sub(_expand_contraction, text)
    text = _rewrite_phrases(text)
    if _DIGIT.search(text):
        for pattern, repl in _NUM_FIXES:
            text = pattern.sub(repl, text)
    if "-" in text:
        text = _HYPHEN.sub(" ", text)
    raw_tokens = _TOKEN.findall(text)
    title = _is_title_case([t for t in raw_tokens if t[0].isalpha()])

    # proper nouns: capitalised, not sentence-initial (or an acronym / a Roman numeral)
    flags: list[bool] = []
    sentence_start = True
    for tok in raw_tokens:
        if tok[0] in _SENTENCE_END:
            sentence_start = True
            flags.append(False)
            continue
        upper = tok.isupper() and len(tok) >= 2 and tok.isalpha()
        proper = not title and tok != "I" and (upper or (tok[0].isupper() and not sentence_start))
        flags.append(proper)
        if tok[0].isalnum() or tok[0] == "_":
            sentence_start = False

    lowered = [t.lower() for t in raw_tokens]
    # Roman numerals after a capitalised name ("World War II", "Henry VIII")
    for k in range(1, len(raw_tokens)):
        if raw_tokens[k].isupper() and lowered[k] in _ROMAN and raw_tokens[k - 1][:1].isupper():
            lowered[k] = str(_ROMAN[lowered[k]])
            flags[k] = False
    folded = _numbers_from(lowered)
    # map folded words back to their flags (folding only merges number words, never flagged)
    tokens: list[_Token] = []
    k = 0
    for surface, value in folded:
        while k < len(lowered) and lowered[k] != surface:
            k += 1
        flag = flags[k] if k < len(flags) else False
        k += 1
        if value is not None:
            tokens.append(_Token(word="", raw=surface, proper=False, number=value))
        elif not (surface[0].isalpha() or surface[0] == "_"):
            tokens.append(_Token(word=_OPERATOR_SYMBOLS.get(surface, ""), raw=surface, proper=False))
        else:
            word = surface
            if word == "second" and tokens and (tokens[-1].raw == "per" or tokens[-1].number is not None):
                word = "second"
            elif word == "second":
                tokens.append(_Token(word="", raw=surface, proper=False, number=2.0))
                continue
            if flag and word in _CAPITALISED_SENSE:  # "US" the country, "May" the month, "Go" the language
                word = surface = _CAPITALISED_SENSE[word]
            canon = _canon(word)
            tokens.append(_Token(word=canon, raw=surface, proper=flag and canon not in STOPWORDS))

    # a binary minus only between operands written with spaces ("a - b", "5 - 3")
    fixed: list[_Token] = []
    for idx, tok in enumerate(tokens):
        if tok.raw == "-":
            prev = tokens[idx - 1] if idx else None
            nxt = tokens[idx + 1] if idx + 1 < len(tokens) else None
            operand = [t is not None and (t.number is not None or len(t.raw) == 1 and t.raw.isalpha()) for t in (prev, nxt)]
            tok = _Token(word="minus" if all(operand) else "", raw="-", proper=False)
        fixed.append(tok)
    tokens = fixed

    operators: Counter[str] = Counter(
        t.word for i, t in enumerate(tokens) if t.word in _OPERATOR_WORDS and _is_operation(tokens, i)
    )
    numbers: Counter[float] = Counter(t.number for t in tokens if t.number is not None and t.number != 1)
    negations = sum(1 for t in tokens if t.raw in NEGATIONS)
    content = frozenset(
        t.word for i, t in enumerate(tokens) if t.word and t.raw not in STOPWORDS and t.word not in STOPWORDS
        and t.word not in LIGHT_CANON and t.raw not in LIGHT and t.raw not in NEGATIONS
        and not (i and t.raw in _TOOL_NOUNS and CLASS_OF.get(tokens[i - 1].word) == "tech")
    )
    proper = frozenset(t.word for t in tokens if t.proper and t.word and t.word not in LIGHT_CANON)
    particles = frozenset(
        (tokens[i].word, tokens[i + 1].raw)
        for i in range(len(tokens) - 1)
        if tokens[i + 1].raw in ("in", "out", "on", "off", "up", "down") and tokens[i].word in content
    )
    return _Analysis(
        tokens=tuple(tokens), numbers=numbers, number_order=tuple(t.number for t in tokens if t.number is not None),
        negations=negations, content=content, proper=proper,
        operators=operators, quoted=quoted, pairs=_direction_pairs(tokens), particles=particles,
        raw_words=raw_words, sequence=tuple(t.word or t.raw for t in tokens if t.word or t.raw[0].isalnum()),
        wh=frozenset(t.raw for t in tokens if t.raw in _WH),
    )


_BINARY_OPERATORS = frozenset({"plus", "minus", "times", "divided", "equals", "modulo", "power"})


def _is_operation(tokens: list[_Token], i: int) -> bool:
    """A binary operator needs an operand after it ("3 times 4", not "3 times a week")."""
    if tokens[i].word not in _BINARY_OPERATORS:
        return True
    for tok in tokens[i + 1 : i + 4]:
        if tok.number is not None or (len(tok.raw) == 1 and tok.raw.isalpha() and tok.raw != "a"):
            return True
        if tok.raw not in ("by", "of", "the", "to"):
            return False
    return False


def _is_content(tok: _Token) -> bool:
    return bool(tok.word) and tok.raw not in STOPWORDS and tok.word not in STOPWORDS and tok.number is None


def _span(tokens: list[_Token], start: int, step: int, limit: int = 2) -> frozenset[str]:
    """Up to `limit` content words from `start` walking by `step`, skipping leading determiners/numbers."""
    out: list[str] = []
    i = start
    while 0 <= i < len(tokens) and len(out) < limit:
        tok = tokens[i]
        if tok.number is not None or (not out and tok.raw in _DETERMINERS):
            i += step
            continue
        if not _is_content(tok):
            break
        out.append(tok.word)
        i += step
    return frozenset(out)


_CONVERT_VERBS = _words("convert translat chang turn cast mov transfer migrat switch export import go fly travel driv")


def _direction_pairs(tokens: list[_Token]) -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    pairs: list[tuple[frozenset[str], frozenset[str]]] = []
    raws = [t.raw for t in tokens]
    for i, raw in enumerate(raws):
        if raw in ("to", "into"):
            right = _span(tokens, i + 1, 1)
            left = _span(tokens, i - 1, -1)
            if "from" in raws[:i]:
                f = max(j for j in range(i) if raws[j] == "from")
                if i - f <= 5:
                    left = _span(tokens, f + 1, 1, limit=3)
            left = frozenset(w for w in left if w not in _CONVERT_VERBS)
            if left and right:
                pairs.append((left, right))
        elif raw == "than":
            right = _span(tokens, i + 1, 1)
            j = i - 1
            while j >= 0 and tokens[j].word in CLASS_OF and CLASS_OF[tokens[j].word] == "degree":
                j -= 1
            while j >= 0 and not _is_content(tokens[j]):
                j -= 1
            left = _span(tokens, j, -1)
            if left and right:
                pairs.append((left, right))
        elif raw == "many" and i and raws[i - 1] == "how":
            target = _span(tokens, i + 1, 1)
            for j in range(i + 1, min(len(raws), i + 8)):
                if raws[j] in ("in", "is", "are", "make", "makes", "equal", "equals", "per"):
                    k = j + 1
                    while k < len(tokens) and tokens[k].raw in STOPWORDS and tokens[k].raw not in _DETERMINERS:
                        k += 1
                    source = _span(tokens, k, 1)
                    if target and source and CLASS_OF.get(next(iter(target)), "") == "unit":
                        pairs.append((source, target))
                    break
        elif raw == "in" and i and "many" not in raws[max(0, i - 4) : i] and "much" not in raws[max(0, i - 4) : i]:
            right = _span(tokens, i + 1, 1, limit=1)
            left = _span(tokens, i - 1, -1, limit=1)
            if left and right and all(CLASS_OF.get(w) == "unit" for w in left | right):
                pairs.append((left, right))
    return tuple((a - b, b - a) for a, b in pairs if a - b and b - a)


# --------------------------------------------------------------------------- comparison


def _one_edit(a: str, b: str) -> bool:
    """One substitution, insertion, deletion or transposition of neighbours apart."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    return a[i + 1 :] == b[i + 1 :] or (i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :])


def _is_typo(word: str, other: str) -> bool:
    """A misspelling ("guacomole" / "guacamole"): one edit apart, same first two letters, and not two
    words the lexicon knows (so "county" / "country" or "desert" / "dessert" stay apart)."""
    if len(word) < 6 or len(other) < 6 or word[:2] != other[:2]:
        return False
    if word in _KNOWN and other in _KNOWN:
        return False
    return _one_edit(word, other) and frozenset((word, other)) not in _CONFUSABLE


def _matches(word: str, others: frozenset[str], typo_targets: frozenset[str] = frozenset()) -> bool:
    """`word` is in `others`, shares its stem with one, or is a misspelling of one of `typo_targets`."""
    if word in others:
        return True
    if word in CLASS_OF or len(word) < 5:
        return False
    if any(_is_typo(word, other) for other in typo_targets if other not in CLASS_OF):
        return True
    for other in others:
        if other in CLASS_OF or len(other) < 5 or frozenset((word, other)) in _CONFUSABLE:
            continue
        common = 0
        for a, b in zip(word, other, strict=False):
            if a != b:
                break
            common += 1
        if common >= 5 and common >= min(len(word), len(other)) - 2:
            return True
    return False


def _unmatched(a: _Analysis, b: _Analysis) -> frozenset[str]:
    """Content words of `a` missing from `b`; a part of a name whose other part matches is not missing
    ("George Orwell" / "Orwell")."""
    missing = {w for w in a.content if not _matches(w, b.content, b.content - a.content)}
    if not missing:
        return frozenset()
    if any(w not in CLASS_OF and not _matches(w, a.content) for w in b.proper & b.content):
        return frozenset(missing)  # a name on each side: "Queen Victoria" / "Queen Elizabeth"
    toks = a.tokens
    for i, t in enumerate(toks):
        if t.word in missing and t.proper and t.word not in CLASS_OF:
            neighbours = [toks[j] for j in (i - 1, i + 1) if 0 <= j < len(toks)]
            if any(n.proper and n.word in b.content for n in neighbours):
                missing.discard(t.word)
    return frozenset(missing)


def _is_antonym(a: str, b: str) -> bool:
    if frozenset((a, b)) in ANTONYM_PAIRS:
        return True
    for x, y in ((a, b), (b, a)):
        for prefix, shortest in _NEG_PREFIXES.items():
            if y == prefix + x and len(x) >= shortest:
                return True
    return False


def _order_flipped(a: _Analysis, b: _Analysis, critical: dict[str, str], exempt: frozenset[str]) -> bool:
    """Two critical words of one kind, once on each side, close together, in opposite order."""

    def positions(an: _Analysis) -> dict[str, int]:
        seen: dict[str, int] = {}
        dup: set[str] = set()
        for i, t in enumerate(an.tokens):
            if t.word in critical:
                if t.word in seen and seen[t.word] != i:
                    dup.add(t.word)
                seen.setdefault(t.word, i)
        return {w: i for w, i in seen.items() if w not in dup}

    def linked(an: _Analysis, i: int, j: int) -> bool:
        lo, hi = min(i, j), max(i, j)
        return any(t.raw in _UNORDERED_LINKS or t.word == "differ" for t in an.tokens[lo + 1 : hi])

    pa, pb = positions(a), positions(b)
    words = sorted((set(pa) & set(pb)) - exempt)
    for x in range(len(words)):
        for y in range(x + 1, len(words)):
            u, v = words[x], words[y]
            if critical[u] != critical[v] or (pa[u] - pa[v]) * (pb[u] - pb[v]) >= 0:
                continue
            if abs(pa[u] - pa[v]) > 5 or abs(pb[u] - pb[v]) > 5:
                continue
            if linked(a, pa[u], pa[v]) or linked(b, pb[u], pb[v]):
                continue
            return True
    return False


def _blocks_exchanged(a: _Analysis, b: _Analysis) -> bool:
    """The same words, with two of them (or two groups) trading places around the words between them:
    "the dog chases the cat" / "the cat chases the dog", "works on my laptop, fails in Docker" /
    "works in Docker, fails on my laptop". Moving one group elsewhere is not an exchange."""
    ia = [i for i, t in enumerate(a.tokens) if t.word in a.content]
    ib = [i for i, t in enumerate(b.tokens) if t.word in b.content]
    wa = [a.tokens[i].word for i in ia]
    wb = [b.tokens[i].word for i in ib]
    if wa == wb or sorted(wa) != sorted(wb):
        return False
    p = next(k for k in range(len(wa)) if wa[k] != wb[k])
    q = next(k for k in range(len(wa) - 1, -1, -1) if wa[k] != wb[k])
    ma, mb = wa[p : q + 1], wb[p : q + 1]
    n = len(ma)
    for lx in range(1, n - 1):
        for ly in range(1, n - lx):
            lm = n - lx - ly
            x, m, y = ma[:lx], ma[lx : lx + lm], ma[lx + lm :]
            if mb != y + m + x or not all(_exchangeable(w) for w in x + y):
                continue
            links = _COORDINATORS if lm > 2 else _LINKS  # "rules of chess" = "chess rules"
            span_a = a.tokens[ia[p + lx - 1] + 1 : ia[p + lx + lm]]
            span_b = b.tokens[ib[p + ly - 1] + 1 : ib[p + ly + lm]]
            if not any(t.raw in links or t.word == "differ" for t in (*span_a, *span_b)):
                return True
    return False


def _exchangeable(word: str) -> bool:
    return word not in GENERIC_CANON and CLASS_OF.get(word) not in ("style", "degree", "ordinal", "format")


def _exchanged(a: _Analysis, b: _Analysis) -> bool:
    """Same words, two of them exchanged, not across and/or/vs ("impact of X on Y" / "impact of Y on X")."""
    wa = [t.word or t.raw for t in a.tokens if t.word or t.raw.isalnum()]
    wb = [t.word or t.raw for t in b.tokens if t.word or t.raw.isalnum()]
    if len(wa) != len(wb):
        return False
    diff = [i for i, (x, y) in enumerate(zip(wa, wb, strict=True)) if x != y]
    if len(diff) != 2:
        return False
    i, j = diff
    return wa[i] == wb[j] and wa[j] == wb[i] and not any(w in _COORDINATORS or w == "differ" for w in wa[i + 1 : j])


_PREPOSITIONS = _words("in on for with at by during under over using via inside outside")


def _added_constraint(a: _Analysis, b: _Analysis, only_b: frozenset[str]) -> str:
    """`b` ends a phrase with a prepositional phrase made only of words `a` lacks ("... in a microwave",
    "... for beginners"): a condition the cached answer did not meet."""
    toks = [t for t in b.tokens if t.word or t.raw.isalnum() or t.number is not None]
    for i, t in enumerate(toks):
        if t.raw not in _PREPOSITIONS:
            continue
        phrase: list[str] = []
        for nxt in toks[i + 1 :]:
            if nxt.raw in _PREPOSITIONS or nxt.raw in ("and", "or", "to", "of") or nxt.number is not None:
                break
            if nxt.word in b.content:
                phrase.append(nxt.word)
        if phrase and all(w in only_b and w not in GENERIC_CANON for w in phrase):
            if not any(CLASS_OF.get(w) in ("unit", "degree", "ordinal") for w in phrase):
                return " ".join(phrase)
    return ""


def _inserted_modifier(a: _Analysis, b: _Analysis) -> str:
    """The only difference is one specific word put before another ("delete a remote branch")."""
    sa = [t.word for t in a.tokens if t.word in a.content]
    toks = [t for t in b.tokens if t.word in b.content]
    sb = [t.word for t in toks]
    if len(sb) != len(sa) + 1:
        return ""
    for i in range(1, len(sb) - 1):
        if sb[:i] + sb[i + 1 :] == sa:
            word = sb[i]
            if word not in GENERIC_CANON and word not in CLASS_OF and not toks[i].proper and not toks[i].raw.endswith("ing"):
                return word
            return ""
    return ""


def _inserted_words(a: _Analysis, b: _Analysis) -> str:
    """`b` is `a` with a specific word (or up to three words with one) put in anywhere: "how do I
    delete my account" / "... my account permanently"."""
    extra = len(b.sequence) - len(a.sequence)
    if not 0 < extra <= 3:
        return ""
    for i in range(len(a.sequence) + 1):
        if b.sequence[i + extra :] == a.sequence[i:]:
            if b.sequence[:i] != a.sequence[:i]:
                return ""
            span = b.sequence[i : i + extra]
            if any(w in b.content and w not in GENERIC_CANON and w not in CLASS_OF for w in span):
                return " ".join(span)
            return ""
        if i < len(a.sequence) and (i >= len(b.sequence) or b.sequence[i] != a.sequence[i]):
            return ""
    return ""


def _word_class(word: str, proper: frozenset[str]) -> str:
    cls = CLASS_OF.get(word)
    if cls:
        return cls
    return "proper" if word in proper else ""


def explain(cached: str, query: str, threshold: float = GUARD_THRESHOLD) -> tuple[float | None, str]:
    """(cosine needed, "") or (None, the rule that rejects the pair): for tests and tuning."""
    a, b = _analyse(cached), _analyse(query)
    if a.numbers != b.numbers:
        return None, "numbers"
    if a.operators != b.operators:
        return None, "operators"
    if (a.operators or "percent" in a.content) and a.number_order != b.number_order:
        return None, "operands reordered"
    if a.negations % 2 != b.negations % 2:
        return None, "negation"
    for x, y in ((a, b), (b, a)):
        if x.quoted and not x.quoted <= y.raw_words:
            return None, "quoted text"
    if a.wh - b.wh and b.wh - a.wh:
        return None, "question word"
    proper = a.proper | b.proper
    only_a = _unmatched(a, b)
    only_b = _unmatched(b, a)

    classes_a = {_word_class(w, proper) for w in only_a} - {""}
    classes_b = {_word_class(w, proper) for w in only_b} - {""}
    if classes_a & classes_b:
        return None, "swap within class " + "/".join(sorted(classes_a & classes_b))
    if (classes_a | classes_b) & BOTH_SIDES_CLASSES:
        return None, "entity on one side: " + "/".join(sorted((classes_a | classes_b) & BOTH_SIDES_CLASSES))
    if any(_is_antonym(x, y) for x in only_a for y in only_b):
        return None, "antonym"
    for word, particle in a.particles:
        for word_b, particle_b in b.particles:
            if word == word_b and particle != particle_b and _is_antonym(particle, particle_b):
                return None, "antonym particle"

    # direction: (A -> B) on one side, (B -> A) on the other
    exempt: set[str] = set()
    for left_a, right_a in a.pairs:
        for left_b, right_b in b.pairs:
            if left_a & right_b and right_a & left_b:
                return None, "direction"
            if left_a & left_b and right_a & right_b:
                exempt |= left_a | right_a
    if _blocks_exchanged(a, b) or _exchanged(a, b):
        return None, "order"
    inserted = _inserted_modifier(a, b) or _inserted_modifier(b, a) or _inserted_words(a, b) or _inserted_words(b, a)
    if inserted:
        return None, "words added: " + inserted
    added = _added_constraint(a, b, only_b) or _added_constraint(b, a, only_a)
    if added:
        return None, "condition added: " + added
    critical = {
        w: "unit" if _word_class(w, proper) == "unit" else "entity"
        for w in a.content & b.content
        if _word_class(w, proper) in ORDERED_CLASSES
    }
    if _order_flipped(a, b, critical, frozenset(exempt)):
        return None, "order"

    # a specific word replaced by another (a word of a class counts as specific here)
    specific_a = frozenset(w for w in only_a if w not in GENERIC_CANON)
    specific_b = frozenset(w for w in only_b if w not in GENERIC_CANON)
    if specific_a and specific_b:
        return None, "swap " + ",".join(sorted(specific_a)) + " / " + ",".join(sorted(specific_b))
    n_generic = sum(1 for w in only_a | only_b if w in GENERIC_CANON)
    n_specific = len(only_a) + len(only_b) - n_generic
    required = threshold + _PER_GENERIC * n_generic + _PER_SPECIFIC * n_specific
    return min(required, _MAX_REQUIRED), ""


def semantic_match(cached: str, query: str, similarity: float, threshold: float = GUARD_THRESHOLD) -> bool:
    """True when the answer cached for `cached` may be served for `query`.

    `similarity` is the cosine of the two prompts' normalised MiniLM embeddings.
    """
    if similarity < threshold:
        return False
    if cached == query:
        return True
    required, _ = explain(cached, query, threshold)
    return required is not None and similarity >= required


# Rules that reject a pair outright whatever the similarity: a different number, operator,
# negation, quoted text, question word, entity, unit, antonym, direction or order. The
# others (a word swapped, added or a condition added) are judged by the learned verifier
# (gateway/hotpath/verifier.py), which knows synonyms these word lists do not.
HARD_RULES = ("numbers", "operators", "operands", "negation", "quoted", "question word", "swap within class",
              "entity on one side", "antonym", "direction", "order")


def hard_reject(cached: str, query: str) -> str | None:
    """The hard rule that rejects the pair, or None."""
    required, reason = explain(cached, query, 0.0)
    return reason if required is None and reason.startswith(HARD_RULES) else None
