"""MMEB rows in their public shapes (VLM2Vec's MMEB-eval / MMEB-train texts), one per dataset.

Each entry: dataset -> (meta-task, query text, query has an image, [positive target text,
distractor target text], targets have images, expected query (instruction, content), expected
positive (instruction, content), expected task id). Texts follow the first rows of the public
data as VLM2Vec's loaders and third-party reproductions print them (placeholder, newline,
instruction, content, trailing newline).
"""
IMG = "<|image_1|>"
Q = "Represent the given image with the following question:"
T_IMG = f"{IMG}\nRepresent the given image.\n"
CROP = f"{IMG}\nRepresent the given cropped image of the object"


def _cls(instruction, content=None, labels=("tench", "goldfish")):
    text = f"{IMG}\n{instruction}" + (f": {content}" if content else "") + "\n"
    instr = instruction + (":" if content else "")
    return ("Classification", text, True, list(labels), False, (instr, content), (None, labels[0]), 6 if content else 3)


def _vqa(question, answers):
    return ("VQA", f"{IMG}\n{Q} {question}\n", True, list(answers), False, (Q, question), (None, answers[0]), 6)


EVAL = {
    "ImageNet-1K": _cls("Represent the given image for classification", labels=("coucal", "tench")),
    "N24News": _cls("Represent the given news image with the following caption for domain classification",
                    "Anthony Pidgeon", ("Travel", "Style")),
    "HatefulMemes": _cls("Represent the given image for binary classification to determine whether it "
                         "constitutes hateful speech or not", labels=("Yes", "No")),
    "VOC2007": _cls("Identify the object shown in the image", labels=("chair", "bus")),
    "SUN397": _cls("Identify the scene shown in the image", labels=("firing range indoor", "berth")),
    "Place365": _cls("Identify the scene shown in the image", labels=("berth", "airport terminal")),
    "ImageNet-A": _cls("Represent the given image for classification", labels=("Rottweiler", "sea anemone")),
    "ImageNet-R": _cls("Represent the given image for classification", labels=("flute", "baseball player")),
    "ObjectNet": _cls("Identify the object shown in the image", labels=("tray", "mug")),
    "Country211": _cls("Identify the country depicted in the image", labels=("Fiji", "China")),
    "OK-VQA": _vqa("What sport can you use this for?", ("race", "tennis")),
    "A-OKVQA": _vqa("What is in the motorcyclist's mouth?", ("cigarette", "gum")),
    "DocVQA": _vqa("What is the ‘actual’ value per 1000, during the year 1975?", ("0.28", "0.31")),
    "InfographicsVQA": _vqa("Which social platform has heavy female audience?", ("pinterest", "twitter")),
    "ChartQA": _vqa("How many food item is shown in the bar graph?", ("14", "12")),
    "Visual7W": _vqa("What color is the sidewalk?", ("Gray.", "Red.")),
    "ScienceQA": _vqa("Which of the following could Gordon's test show?", ("how steady a parachute was", "nothing")),
    "VizWiz": _vqa("Can you tell me what this medicine is please?", ("night time", "unanswerable")),
    "GQA": _vqa("What is this bird called?", ("This is a parrot.", "This is a crow.")),
    "TextVQA": _vqa("what is the brand of this camera?", ("dakota", "nikon")),
    "VisDial": ("Retrieval", "Represent the given dialogue about an image, which is used for image retrieval: "
                "Q:is the photo in color\nA:yes\nQ:is it well lit\nA:no\n\n", False,
                [f"{IMG}\nRepresent the given image\n"] * 2, True,
                ("Represent the given dialogue about an image, which is used for image retrieval:",
                 "Q:is the photo in color\nA:yes\nQ:is it well lit\nA:no"), ("Represent the given image", None), 0),
    "CIRR": ("Retrieval", f"{IMG}\nGiven an image, find a similar everyday image with the described changes: "
             "Show three bottles of soft drink.\n", True, [T_IMG] * 2, True,
             ("Given an image, find a similar everyday image with the described changes:",
              "Show three bottles of soft drink."), ("Represent the given image.", None), 7),
    "VisualNews_t2i": ("Retrieval", "Retrieve an image of this news caption. US goalkeeper Hope Solo makes a save.\n",
                       False, [T_IMG] * 2, True,
                       ("Retrieve an image of this news caption.", "US goalkeeper Hope Solo makes a save."),
                       ("Represent the given image.", None), 0),
    "VisualNews_i2t": ("Retrieval", f"{IMG}\nFind a caption for the news in the given photo.\n", True,
                       ["Rahul Gandhi addresses the plenary session in New Delhi.", "A goalkeeper makes a save."],
                       False, ("Find a caption for the news in the given photo.", None),
                       (None, "Rahul Gandhi addresses the plenary session in New Delhi."), 3),
    "MSCOCO_t2i": ("Retrieval", "Find me an everyday image that matches the given caption: "
                   "A man with a red helmet on a small moped on a dirt road.\n", False, [T_IMG] * 2, True,
                   ("Find me an everyday image that matches the given caption:",
                    "A man with a red helmet on a small moped on a dirt road."), ("Represent the given image.", None), 0),
    "MSCOCO_i2t": ("Retrieval", f"{IMG}\nFind an image caption describing the given everyday image.\n", True,
                   ["A man with a red helmet on a small moped.", "A dog on a couch."], False,
                   ("Find an image caption describing the given everyday image.", None),
                   (None, "A man with a red helmet on a small moped."), 3),
    "NIGHTS": ("Retrieval", f"{IMG}\nFind a day-to-day image that looks similar to the provided image.\n", True,
               [T_IMG] * 2, True, ("Find a day-to-day image that looks similar to the provided image.", None),
               ("Represent the given image.", None), 4),
    "WebQA": ("Retrieval", "Find a Wikipedia image that answers this question: Does a Minnetonka Rhododendron "
              "flower have petals in a cup shape?\n", False,
              [f"{IMG}\nRepresent the given Wikipedia image with related text information: Minnetonka Rhododendron "
               "flower in Oak Hill, Virginia.\n", f"{IMG}\nRepresent the given Wikipedia image with related text "
               "information: Hays County Courthouse.\n"], True,
              ("Find a Wikipedia image that answers this question:",
               "Does a Minnetonka Rhododendron flower have petals in a cup shape?"),
              ("Represent the given Wikipedia image with related text information:",
               "Minnetonka Rhododendron flower in Oak Hill, Virginia."), 2),
    "FashionIQ": ("Retrieval", f"{IMG}\nFind an image to match the fashion image and style note: Is shiny and "
                  "silver with shorter sleeves and fit and flare.\n", True, [T_IMG] * 2, True,
                  ("Find an image to match the fashion image and style note:",
                   "Is shiny and silver with shorter sleeves and fit and flare."), ("Represent the given image.", None), 7),
    "Wiki-SS-NQ": ("Retrieval", "Find the document image that can answer the given query: who needs to know about "
                   "the jet stream\n", False, [f"{IMG}\nRepresent the given image\n"] * 2, True,
                   ("Find the document image that can answer the given query:", "who needs to know about the jet stream"),
                   ("Represent the given image", None), 0),
    "OVEN": ("Retrieval", f"{IMG}\nRetrieve a Wikipedia image-description pair that provides evidence for the "
             "question of this image: What is the name of this place?\n", True,
             [f"{IMG}\nRepresent the given Wikipedia image with related text information: Titisee. The Titisee is "
              "a lake in the southern Black Forest.\n", f"{IMG}\nRepresent the given Wikipedia image with related "
              "text information: Feldberg.\n"], True,
             ("Retrieve a Wikipedia image-description pair that provides evidence for the question of this image:",
              "What is the name of this place?"),
             ("Represent the given Wikipedia image with related text information:",
              "Titisee. The Titisee is a lake in the southern Black Forest."), 8),
    "EDIS": ("Retrieval", "Find a news image that matches the provided caption: Shimon Peres and Mahmoud Abbas "
             "arrive at the World Economic Forum.\n", False,
             [f"{IMG}\nRepresent the given image with related text information: WorldAs the West pays tribute to "
              "Peres.\n", f"{IMG}\nRepresent the given image with related text information: Comic Riffs.\n"], True,
             ("Find a news image that matches the provided caption:",
              "Shimon Peres and Mahmoud Abbas arrive at the World Economic Forum."),
             ("Represent the given image with related text information:", "WorldAs the West pays tribute to Peres."), 2),
    "MSCOCO": ("Grounding", f'{IMG}\nCrop the image to to isolate the object labeled as "dog"\n', True, [CROP] * 2,
               True, ("Crop the image to to isolate the object labeled as", '"dog"'),
               ("Represent the given cropped image of the object", None), 7),
    "RefCOCO": ("Grounding", f'{IMG}\nSelect the portion of the image that follows the language expressions. '
                '"bowl behind the others can only see part"\n', True, [CROP] * 2, True,
                ("Select the portion of the image that follows the language expressions.",
                 '"bowl behind the others can only see part"'), ("Represent the given cropped image of the object", None), 7),
    "RefCOCO-Matching": ("Grounding", f'{IMG}\nSelect the portion of the image that follows the language '
                         'expressions: "bowl behind the others can only see part"\n', True,
                         [f'{IMG}\nSelect the portion of the image that follows the language expressions: '
                          '"Dish in top right corner"\n', f'{IMG}\nSelect the portion of the image that follows the '
                          'language expressions: "left sandwich"\n'], True,
                         ("Select the portion of the image that follows the language expressions:",
                          '"bowl behind the others can only see part"'),
                         ("Select the portion of the image that follows the language expressions:",
                          '"Dish in top right corner"'), 8),
    "Visual7W-Pointing": ("Grounding", f'{IMG}\nSelect the portion of the image that answers the question '
                          '"Which box frames the toilet?"\n', True, [CROP] * 2, True,
                          ("Select the portion of the image that answers the question", '"Which box frames the toilet?"'),
                          ("Represent the given cropped image of the object", None), 7),
}

#: MMEB-train rows whose prompts differ from eval (qry, has image, pos_text, pos has image, query split, pos split, task).
TRAIN = {
    "MSCOCO": (f'{IMG}\nSelect the portion of the image that isolates the object labeled as "hot dog"\n', True, CROP,
               True, ("Select the portion of the image that isolates the object labeled as", '"hot dog"'),
               ("Represent the given cropped image of the object", None), 7),
    "HatefulMemes": (f"{IMG}\nRepresent the given image for binary classification to determine whether it "
                     "constitutes hateful speech or not\n", True, "Yes", False,
                     ("Represent the given image for binary classification to determine whether it constitutes "
                      "hateful speech or not", None), (None, "Yes"), 3),
    "CIRR": (f"{IMG}\nGiven an image, find a similar everyday image with the described changes: Many hamster "
             "together playing in a different background.\n", True, T_IMG, True,
             ("Given an image, find a similar everyday image with the described changes:",
              "Many hamster together playing in a different background."), ("Represent the given image.", None), 7),
}
