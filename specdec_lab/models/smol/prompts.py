"""Training prompts for SmolLM2's drafters, made offline from text every machine here has, never from Spec-Bench.

The drafters learn from the target's own answers (self-distillation), so the prompts only need
to *ask* the kinds of things Spec-Bench asks, in its formats, about other material:

| kind | made from |
|---|---|
| summarization | "Summarize: " + a paragraph of a Python standard-library module docstring |
| rag | a docstring paragraph, then a question about it |
| translation | "Translate German to English: " + a German message of a Debian program's translation catalogue (``/usr/share/locale/de``) |
| math_reasoning | arithmetic word problems drawn from templates with seeded numbers |
| qa | short factual questions from templates over a list of subjects |
| chat | MT-bench-like instructions (write, role-play, explain, code, extract) from templates over topics |

``python -m specdec_lab.models.smol.prompts`` writes ``prompts.json`` (committed, so training is reproducible on
a machine whose locale files differ). A test checks that no Spec-Bench prompt is in it.
"""

from __future__ import annotations

import ast
import gettext
import json
import random
import struct
import sysconfig
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPTS = HERE / "prompts.json"
# What reading a broken .mo file raises (gettext.GNUTranslations._parse): OSError (unreadable; bad magic number,
# version or offsets), struct.error (truncated header), ValueError (UnicodeDecodeError on bytes not in the declared
# charset; a malformed plural-forms expression), LookupError (an unknown charset; IndexError on a header line
# without "charset=" or "plural=").
BAD_CATALOGUE = (OSError, struct.error, ValueError, LookupError)

TOPICS = ["renewable energy", "the history of printing", "coral reefs", "volcanoes", "the Roman Empire", "jazz music",
          "machine learning", "bees and pollination", "the water cycle", "ancient Egypt", "chess strategy", "urban gardening",
          "the human immune system", "black holes", "the Silk Road", "electric cars", "sleep and memory", "photosynthesis",
          "the French Revolution", "climate change", "public libraries", "the Internet", "vaccines", "the Moon landing",
          "rainforests", "recycling", "the stock market", "earthquakes", "the Olympic Games", "coffee", "bridges",
          "the printing press", "honeybees", "desert animals", "the Renaissance", "solar panels", "glaciers", "trains",
          "the piano", "mountain climbing", "healthy breakfasts", "time management", "learning a language", "museums",
          "the ocean floor", "wind turbines", "the Great Wall of China", "board games", "birds migration", "antibiotics"]
PERSONAS = ["a pirate captain", "a medieval knight", "a friendly robot", "a famous detective", "a space explorer",
            "a wise old librarian", "a sports coach", "a chef in Paris", "a tour guide in Rome", "a time traveller"]
TASKS = ["reverses a string", "checks whether a number is prime", "counts the vowels in a sentence",
         "merges two sorted lists", "returns the n-th Fibonacci number", "removes duplicates from a list keeping order",
         "finds the longest word in a text", "converts Celsius to Fahrenheit", "computes the factorial of n",
         "checks whether a string is a palindrome", "flattens a nested list", "counts word frequencies in a text",
         "finds the second largest number in a list", "validates an email address with a regular expression",
         "computes the greatest common divisor of two numbers", "transposes a matrix given as a list of lists"]
CHAT = ["Write a short blog post about {t}.", "Explain {t} to a high school student.", "Give me five fun facts about {t}.",
        "Write a short poem about {t}.", "What are the pros and cons of {t}?", "Draft a short email inviting colleagues to a talk about {t}.",
        "Describe {t} in three paragraphs.", "Write a persuasive paragraph about why people should care about {t}.",
        "Summarize the main ideas of {t} in a bulleted list.", "Write a short story that involves {t}."]
ROLE = "Pretend to be {p}. {q}"
ROLE_Q = ["Describe your typical day.", "What advice would you give to a young person?", "Tell me about {t}.",
          "What do you think about {t}?"]
QA = ["What is {t}?", "Why is {t} important?", "When did people first study {t}?", "Who is famous for work on {t}?",
      "How does {t} work?", "Where can I learn more about {t}?"]
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kemal", "Lena", "Mo", "Nia"]
ITEMS = ["apples", "books", "pencils", "tickets", "cupcakes", "marbles", "stamps", "shirts", "plants", "cookies"]


def _math(rng: random.Random) -> str:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b, c, price = rng.randint(3, 60), rng.randint(2, 12), rng.randint(2, 9), rng.randint(2, 25)
    return rng.choice([
        f"{name} has {a} {item}. She buys {b} packs of {c} {item} each. How many {item} does she have now?",
        f"{name} sells {item} for ${price} each. On Monday {name} sold {a} and on Tuesday {b} more than on Monday. How much money did {name} make?",
        f"A shop had {a * c} {item}. It sold {c} boxes of {b} {item}. How many {item} are left?",
        f"{name} reads {b} pages a day. How many days will it take to read a book of {a * b + c} pages?",
        f"{name} pays ${price * a} for {a} {item}. How much would {b} {item} cost at the same price?",
    ])


def _docstring_paragraphs(limit_files: int = 400) -> list[tuple[str, str]]:
    """(module name, paragraph) pairs from the standard library's module docstrings, 200-1200 characters each."""
    out = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py"))[:limit_files]:
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8", errors="replace")))
        except SyntaxError:
            continue
        for para in (doc or "").split("\n\n"):
            para = " ".join(para.split())
            if 200 <= len(para) <= 1200 and ">>>" not in para:
                out.append((path.stem, para))
    return out


def _german(limit: int) -> list[str]:
    """German messages (60-400 characters) from the Debian translation catalogues installed here."""
    seen, out = set(), []
    for mo in sorted(Path("/usr/share/locale/de/LC_MESSAGES").glob("*.mo")):
        try:
            with mo.open("rb") as fp:
                catalog = gettext.GNUTranslations(fp)._catalog
        except BAD_CATALOGUE as e:  # one unreadable or malformed catalogue: skip it, say so
            warnings.warn(f"skipping {mo}: {type(e).__name__}: {e}", stacklevel=2)
            continue
        for value in catalog.values():
            text = " ".join(str(value).split()) if isinstance(value, str) else ""
            if 60 <= len(text) <= 400 and "%" not in text and text not in seen:
                seen.add(text)
                out.append(text)
    return out[:limit]


def build(seed: int = 0, n_per_kind: int = 130) -> list[dict]:
    rng = random.Random(seed)
    prompts = []
    paragraphs = _docstring_paragraphs()
    rng.shuffle(paragraphs)
    half = len(paragraphs) * 3 // 5
    for module, para in paragraphs[:half]:
        prompts.append({"kind": "summarization", "text": f"Summarize: {para}"})
    for module, para in paragraphs[half:]:
        question = rng.choice([f"What is the purpose of the {module} module?", "What does the text above describe?",
                               "Which problem does this solve, according to the text?"])
        prompts.append({"kind": "rag", "text": f"{para}\n\nUsing the passage above, answer: {question}"})
    german = _german(20 * n_per_kind)
    rng.shuffle(german)
    prompts += [{"kind": "translation", "text": f"Translate German to English: {g}"} for g in german[:n_per_kind]]
    prompts += [{"kind": "math_reasoning", "text": _math(rng)} for _ in range(n_per_kind)]
    prompts += [{"kind": "qa", "text": rng.choice(QA).format(t=rng.choice(TOPICS))} for _ in range(n_per_kind)]
    for _ in range(3 * n_per_kind):
        roll = rng.random()
        if roll < 0.55:
            text = rng.choice(CHAT).format(t=rng.choice(TOPICS))
        elif roll < 0.75:
            text = ROLE.format(p=rng.choice(PERSONAS), q=rng.choice(ROLE_Q).format(t=rng.choice(TOPICS)))
        else:
            text = f"Write a Python function that {rng.choice(TASKS)}. Explain how it works."
        prompts.append({"kind": "chat", "text": text})
    unique = list({p["text"]: p for p in prompts}.values())
    rng.shuffle(unique)
    return unique


if __name__ == "__main__":
    prompts = build()
    PROMPTS.write_text(json.dumps(prompts, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    from collections import Counter

    print(len(prompts), Counter(p["kind"] for p in prompts), PROMPTS.stat().st_size, "bytes")
