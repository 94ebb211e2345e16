"""Datasets as in-memory tensors (images, text, synthetic sequences) and fast batch
iteration."""

from deepnotes.data.batches import Batches, eval_batches, hold_out
from deepnotes.data.idx import read_idx, read_idx_pair, write_idx
from deepnotes.data.images import (
    FASHION_CLASSES,
    FASHION_MEAN,
    FASHION_STD,
    download_fashion_mnist,
    fashion_mnist_source,
    load_fashion_mnist,
    load_mnist,
    mnist_source,
    standardize_images,
)
from deepnotes.data.matrices import fashion_matrices
from deepnotes.data.numbers import (
    LANGUAGES,
    EncodedPairs,
    NumberPair,
    TargetVocab,
    TokenVocab,
    encode_pairs,
    english_tokens,
    morphemes,
    number_pair,
    sequence_pair,
    translation_split,
    translation_splits,
)
from deepnotes.data.scenes import (
    CLASS_WORDS,
    Scenes,
    caption,
    captions,
    decode_captions,
    encode_captions,
    make_scenes,
)
from deepnotes.data.sequences import adding_problem, copy_task
from deepnotes.data.text import (
    CORPORA,
    SHAKESPEARE_SHA256,
    CharVocab,
    build_shakespeare,
    download_shakespeare,
    load_corpus,
    load_shakespeare,
    shakespeare_source,
    split_text,
    stdlib_docstrings,
)
from deepnotes.data.toy import load_digits, load_table, make_blobs, make_moons, make_ring

__all__ = [
    "hold_out",
    "Batches", "eval_batches", "read_idx", "read_idx_pair", "write_idx", "FASHION_CLASSES",
    "FASHION_MEAN", "FASHION_STD", "download_fashion_mnist", "fashion_mnist_source",
    "load_fashion_mnist", "load_mnist", "mnist_source", "load_digits", "make_blobs",
    "make_moons", "make_ring", "standardize_images", "load_table", "fashion_matrices",
    "adding_problem", "copy_task", "CORPORA", "SHAKESPEARE_SHA256", "CharVocab",
    "build_shakespeare", "download_shakespeare", "load_corpus", "load_shakespeare",
    "shakespeare_source", "split_text", "stdlib_docstrings", "LANGUAGES", "EncodedPairs",
    "NumberPair", "TargetVocab", "TokenVocab", "encode_pairs", "english_tokens", "morphemes",
    "number_pair", "sequence_pair", "translation_split", "translation_splits",
    "CLASS_WORDS", "Scenes", "caption", "captions", "decode_captions", "encode_captions",
    "make_scenes",
]
