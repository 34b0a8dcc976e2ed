#!/usr/bin/python3
"""text-tagger.py - the small category tagger of docs/query.md ("Text"):
how QUERY tags real text under each phrase weighting, and what counting
split-off punctuation would do.

20 categories, 3 exemplars each stored as SET exemplar category in one
database; 100 held-out member words and 20 phrases with punctuation and
filler words ("the CHERRY, please."), each tagged by
QUERY text COUNT 1 UNKNOWN skip [WEIGHTING w]. "punctuation counted" sends
the same phrases with their punctuation as tokens of its own
("the CHERRY , please ."), which counts it (docs/query.md, Tokens).

Usage: bench/text-tagger.py [PORT] [DB] against a running attnkvd on the
default vectors (GloVe 6B 100d); PORT defaults to 6479, DB (emptied first)
to 15. Standard library only (the test harness's RESP client).
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import akvtest  # noqa: E402

CATS = {
    "fruit": (["apple", "banana", "grape"], ["cherry", "peach", "mango", "pear", "plum"]),
    "animal": (["dog", "horse", "lion"], ["cat", "tiger", "wolf", "cow", "rabbit"]),
    "color": (["red", "blue", "green"], ["yellow", "purple", "orange", "pink", "brown"]),
    "vehicle": (["car", "truck", "bus"], ["bicycle", "motorcycle", "van", "tractor", "taxi"]),
    "sport": (["football", "tennis", "golf"], ["basketball", "hockey", "baseball", "cricket",
                                               "rugby"]),
    "instrument": (["guitar", "piano", "violin"], ["drum", "flute", "trumpet", "cello",
                                                   "saxophone"]),
    "country": (["france", "germany", "japan"], ["italy", "spain", "china", "brazil", "canada"]),
    "weather": (["rain", "snow", "wind"], ["storm", "fog", "hail", "thunder", "sunshine"]),
    "furniture": (["chair", "table", "sofa"], ["bed", "desk", "cabinet", "bench", "couch"]),
    "clothing": (["shirt", "jacket", "trousers"], ["dress", "coat", "sweater", "skirt", "jeans"]),
    "drink": (["coffee", "tea", "juice"], ["beer", "wine", "milk", "soda", "whiskey"]),
    "profession": (["doctor", "teacher", "lawyer"], ["nurse", "engineer", "farmer", "pilot",
                                                     "dentist"]),
    "tool": (["hammer", "screwdriver", "saw"], ["wrench", "drill", "pliers", "chisel", "shovel"]),
    "metal": (["iron", "copper", "gold"], ["silver", "zinc", "nickel", "aluminum", "tin"]),
    "flower": (["rose", "tulip", "lily"], ["daisy", "orchid", "sunflower", "violet", "lotus"]),
    "emotion": (["anger", "joy", "fear"], ["sadness", "happiness", "love", "disgust",
                                           "surprise"]),
    "vegetable": (["carrot", "potato", "onion"], ["cabbage", "broccoli", "spinach", "lettuce",
                                                  "celery"]),
    "building": (["house", "church", "castle"], ["tower", "palace", "cathedral", "mansion",
                                                 "temple"]),
    "weapon": (["sword", "gun", "rifle"], ["pistol", "dagger", "spear", "bow", "cannon"]),
    "body": (["arm", "leg", "head"], ["hand", "foot", "knee", "shoulder", "elbow"]),
}
PHRASES = [
    ("the CHERRY, please.", "fruit"), ("Cherry!", "fruit"), ("I'd like a peach, thanks.", "fruit"),
    ("my cat's toy", "animal"), ("a big, angry tiger!", "animal"), ("paint it yellow.", "color"),
    ("the old bicycle...", "vehicle"), ("we played basketball today.", "sport"),
    ("she plays the flute, beautifully.", "instrument"), ("a trip to Italy", "country"),
    ("heavy storm tonight!", "weather"), ("sit on the bed", "furniture"),
    ("a warm coat, please", "clothing"), ("a cold beer?", "drink"), ("ask the nurse.", "profession"),
    ("pass me the wrench", "tool"), ("pure silver", "metal"), ("a red orchid", "flower"),
    ("such sadness...", "emotion"), ("fresh broccoli, please.", "vegetable"),
]


def spaced(text):
    """The phrase with its punctuation as tokens of its own (counted)."""
    return re.sub(r"([^\w\s'])", r" \1 ", text)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6479
    db = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    c = akvtest.Client(port)
    c.cmd("SELECT", db)
    c.cmd("FLUSHDB")
    for cat, (exemplars, _) in CATS.items():
        for e in exemplars:
            assert c.cmd("SET", e, cat) == "OK", e

    def tag(text, weighting):
        r = c.cmd("QUERY", text, "COUNT", 1, "UNKNOWN", "skip", "WEIGHTING", weighting)
        return None if isinstance(r, akvtest.RespError) or not r else r[0]

    held = [(w, cat) for cat, (_, members) in CATS.items() for w in members]
    print("| weighting | held-out words | phrases | phrases, punctuation counted |")
    print("| --- | --- | --- | --- |")
    for weighting in ("mean", "sif"):
        words = sum(tag(w, weighting) == cat for w, cat in held)
        phrases = sum(tag(t, weighting) == cat for t, cat in PHRASES)
        counted = sum(tag(spaced(t), weighting) == cat for t, cat in PHRASES)
        print("| %s | %d/%d | %d/%d | %d/%d |" % (weighting, words, len(held), phrases,
                                                  len(PHRASES), counted, len(PHRASES)))
    c.cmd("FLUSHDB")
    c.close()


if __name__ == "__main__":
    main()
