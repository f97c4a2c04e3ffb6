"""Caltech-UCSD Birds-200-2011 (CUB-200-2011; Wah et al., 2011), one vs. rest over its 200 species, read from the
archive's own index files as the paper's code reads them (``datasets/cub.py``): torchvision has no reader for it."""

from pathlib import Path

import numpy as np
import torch
from torchvision.datasets.utils import download_and_extract_archive

from ..errors import OEADError
from .fingerprint import Cache, named_files
from .images import decode_all
from .sources import LabelledSource, Split, download

INDEX_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")


def read_pairs(path: Path) -> list[tuple[int, str]]:
    """The ``<id> <value>`` lines of one of the archive's index files."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise OEADError(f"data.root: cannot read {path} ({e.strerror or e})") from None
    pairs = []
    for n, line in enumerate(lines, 1):
        key, _, value = line.strip().partition(" ")
        if not line.strip():
            continue
        if not key.isdigit() or not value:
            raise OEADError(f"{path}:{n}: expected '<id> <value>', got {line.strip()[:60]!r}")
        pairs.append((int(key), value.strip()))
    return pairs


class CUB200(LabelledSource):
    """``root/CUB_200_2011/``: ``images/<class>/*.jpg``, ``images.txt`` (``<id> <path under images/>``),
    ``image_class_labels.txt`` (``<id> <class 1..200>``), ``train_test_split.txt`` (``<id> <1: training, 0: test>``)
    and ``classes.txt`` (``<class> <NNN.Name>``, which must name the classes below, in order), as the archive
    extracts; downloaded there (md5 checked) if ``download``. Decoded once at ``image_size`` and cached."""

    url = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
    md5 = "97eceeb196236b17998738112f37df78"
    classes = [
        "Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross", "Groove_billed_Ani", "Crested_Auklet",
        "Least_Auklet", "Parakeet_Auklet", "Rhinoceros_Auklet", "Brewer_Blackbird", "Red_winged_Blackbird",
        "Rusty_Blackbird", "Yellow_headed_Blackbird", "Bobolink", "Indigo_Bunting", "Lazuli_Bunting",
        "Painted_Bunting", "Cardinal", "Spotted_Catbird", "Gray_Catbird", "Yellow_breasted_Chat", "Eastern_Towhee",
        "Chuck_will_Widow", "Brandt_Cormorant", "Red_faced_Cormorant", "Pelagic_Cormorant", "Bronzed_Cowbird",
        "Shiny_Cowbird", "Brown_Creeper", "American_Crow", "Fish_Crow", "Black_billed_Cuckoo", "Mangrove_Cuckoo",
        "Yellow_billed_Cuckoo", "Gray_crowned_Rosy_Finch", "Purple_Finch", "Northern_Flicker", "Acadian_Flycatcher",
        "Great_Crested_Flycatcher", "Least_Flycatcher", "Olive_sided_Flycatcher", "Scissor_tailed_Flycatcher",
        "Vermilion_Flycatcher", "Yellow_bellied_Flycatcher", "Frigatebird", "Northern_Fulmar", "Gadwall",
        "American_Goldfinch", "European_Goldfinch", "Boat_tailed_Grackle", "Eared_Grebe", "Horned_Grebe",
        "Pied_billed_Grebe", "Western_Grebe", "Blue_Grosbeak", "Evening_Grosbeak", "Pine_Grosbeak",
        "Rose_breasted_Grosbeak", "Pigeon_Guillemot", "California_Gull", "Glaucous_winged_Gull", "Heermann_Gull",
        "Herring_Gull", "Ivory_Gull", "Ring_billed_Gull", "Slaty_backed_Gull", "Western_Gull", "Anna_Hummingbird",
        "Ruby_throated_Hummingbird", "Rufous_Hummingbird", "Green_Violetear", "Long_tailed_Jaeger",
        "Pomarine_Jaeger", "Blue_Jay", "Florida_Jay", "Green_Jay", "Dark_eyed_Junco", "Tropical_Kingbird",
        "Gray_Kingbird", "Belted_Kingfisher", "Green_Kingfisher", "Pied_Kingfisher", "Ringed_Kingfisher",
        "White_breasted_Kingfisher", "Red_legged_Kittiwake", "Horned_Lark", "Pacific_Loon", "Mallard",
        "Western_Meadowlark", "Hooded_Merganser", "Red_breasted_Merganser", "Mockingbird", "Nighthawk",
        "Clark_Nutcracker", "White_breasted_Nuthatch", "Baltimore_Oriole", "Hooded_Oriole", "Orchard_Oriole",
        "Scott_Oriole", "Ovenbird", "Brown_Pelican", "White_Pelican", "Western_Wood_Pewee", "Sayornis",
        "American_Pipit", "Whip_poor_Will", "Horned_Puffin", "Common_Raven", "White_necked_Raven",
        "American_Redstart", "Geococcyx", "Loggerhead_Shrike", "Great_Grey_Shrike", "Baird_Sparrow",
        "Black_throated_Sparrow", "Brewer_Sparrow", "Chipping_Sparrow", "Clay_colored_Sparrow", "House_Sparrow",
        "Field_Sparrow", "Fox_Sparrow", "Grasshopper_Sparrow", "Harris_Sparrow", "Henslow_Sparrow",
        "Le_Conte_Sparrow", "Lincoln_Sparrow", "Nelson_Sharp_tailed_Sparrow", "Savannah_Sparrow", "Seaside_Sparrow",
        "Song_Sparrow", "Tree_Sparrow", "Vesper_Sparrow", "White_crowned_Sparrow", "White_throated_Sparrow",
        "Cape_Glossy_Starling", "Bank_Swallow", "Barn_Swallow", "Cliff_Swallow", "Tree_Swallow", "Scarlet_Tanager",
        "Summer_Tanager", "Artic_Tern", "Black_Tern", "Caspian_Tern", "Common_Tern", "Elegant_Tern",
        "Forsters_Tern", "Least_Tern", "Green_tailed_Towhee", "Brown_Thrasher", "Sage_Thrasher",
        "Black_capped_Vireo", "Blue_headed_Vireo", "Philadelphia_Vireo", "Red_eyed_Vireo", "Warbling_Vireo",
        "White_eyed_Vireo", "Yellow_throated_Vireo", "Bay_breasted_Warbler", "Black_and_white_Warbler",
        "Black_throated_Blue_Warbler", "Blue_winged_Warbler", "Canada_Warbler", "Cape_May_Warbler",
        "Cerulean_Warbler", "Chestnut_sided_Warbler", "Golden_winged_Warbler", "Hooded_Warbler", "Kentucky_Warbler",
        "Magnolia_Warbler", "Mourning_Warbler", "Myrtle_Warbler", "Nashville_Warbler", "Orange_crowned_Warbler",
        "Palm_Warbler", "Pine_Warbler", "Prairie_Warbler", "Prothonotary_Warbler", "Swainson_Warbler",
        "Tennessee_Warbler", "Wilson_Warbler", "Worm_eating_Warbler", "Yellow_Warbler", "Northern_Waterthrush",
        "Louisiana_Waterthrush", "Bohemian_Waxwing", "Cedar_Waxwing", "American_Three_toed_Woodpecker",
        "Pileated_Woodpecker", "Red_bellied_Woodpecker", "Red_cockaded_Woodpecker", "Red_headed_Woodpecker",
        "Downy_Woodpecker", "Bewick_Wren", "Cactus_Wren", "Carolina_Wren", "House_Wren", "Marsh_Wren", "Rock_Wren",
        "Winter_Wren", "Common_Yellowthroat"
    ]  # fmt: skip

    def __init__(
        self,
        root: str,
        image_size: int | None = 256,
        cache_dir: str | None = None,
        download: bool = True,
        workers: int = 0,
    ) -> None:
        self.root, self.image_size, self.cache_dir = root, image_size, cache_dir
        self.download, self.workers = download, workers

    @staticmethod
    def folder(root: str) -> Path:
        return Path(root) / "CUB_200_2011"

    @classmethod
    def fetch(cls, spec: dict) -> None:
        """Download and extract the archive when ``images.txt`` is missing and ``download`` is on."""
        if spec.get("download", True) and not (cls.folder(spec["root"]) / "images.txt").is_file():
            download("CUB-200-2011", download_and_extract_archive, cls.url, spec["root"], md5=cls.md5)

    @classmethod
    def fingerprint(cls, spec: dict, cache: Cache) -> str | None:
        """The four index files and every image ``images.txt`` lists."""
        base = cls.folder(spec["root"])
        if not all((base / name).is_file() for name in INDEX_FILES):
            return None
        listed = [f"images/{path}" for _, path in read_pairs(base / "images.txt")]
        return cache.digest("cub200", base, named_files(base, [*INDEX_FILES, *listed]))

    def index(self) -> tuple[list[Path], np.ndarray, np.ndarray]:
        """(image files in ``images.txt`` order, their class indices 0..199, whether each is a training image)."""
        base = self.folder(self.root)
        if not (base / "images.txt").is_file():
            raise OEADError(f"data.root={self.root}: no CUB_200_2011/images.txt (set data.download=true)")
        names = [name.partition(".")[2] for _, name in read_pairs(base / "classes.txt")]
        if names != self.classes:
            wrong = next((i for i, (a, b) in enumerate(zip(names, self.classes)) if a != b), min(len(names), 200))
            raise OEADError(f"{base / 'classes.txt'}: class {wrong + 1} is not {self.classes[min(wrong, 199)]!r} "
                            f"(CUB-200-2011 has these 200 classes in this order)")  # fmt: skip
        images = read_pairs(base / "images.txt")
        labels, training = (
            dict(read_pairs(base / name)) for name in ("image_class_labels.txt", "train_test_split.txt")
        )
        missing = next((i for i, _ in images if i not in labels or i not in training), None)
        if missing is not None:
            raise OEADError(f"{base}: image {missing} of images.txt has no class or no split")
        bad_label = any(not v.isdigit() or not 1 <= int(v) <= 200 for v in labels.values())
        if bad_label or set(training.values()) - {"0", "1"}:
            raise OEADError(f"{base}: image_class_labels.txt needs classes 1..200, train_test_split.txt 0 or 1")
        files = [base / "images" / path for _, path in images]
        classes = np.array([int(labels[i]) - 1 for i, _ in images], dtype=np.int64)  # 1..200 -> 0..199, as the paper's
        return files, classes, np.array([training[i] == "1" for i, _ in images], dtype=bool)

    def load(self) -> tuple[Split, Split]:
        files, labels, training = self.index()
        splits = []
        for keep in (training, ~training):
            chosen = [f for f, k in zip(files, keep) if k]
            if not chosen:
                raise OEADError(f"data.root={self.root}: train_test_split.txt leaves a split of CUB-200-2011 empty")
            images = decode_all(chosen, self.image_size, self.cache_dir, self.workers)
            splits.append(Split(torch.from_numpy(images), torch.from_numpy(labels[keep])))
        return tuple(splits)
