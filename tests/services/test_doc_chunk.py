"""chunk_document: bounded chunks in order, cut at paragraphs then sentences, overlapping,
never crossing sections, each keeping its section's locator — on converted real files."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.services.doc_files import make_pdf
from victor_gui.services.attachment_types import ConvertedDocument, DocumentSection
from victor_gui.services.doc_convert import chunk_document, convert_document
from victor_gui.services.token_count import estimate_tokens


def doc_of(*sections: DocumentSection) -> ConvertedDocument:
    return ConvertedDocument(name="n.txt", sha256="ab" * 32, media_type="text/plain", sections=sections)


def test_pdf_chunks_keep_page_locators_and_stay_under_the_budget(tmp_path: Path) -> None:
    page = "\n".join(f"Sentence {i} says something about the budget of this year." for i in range(40))
    doc = convert_document(make_pdf(tmp_path / "b.pdf", [page, page.replace("budget", "plan")]))
    chunks = chunk_document(doc, max_tokens=120, overlap=20)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.locator for c in chunks} == {"page 1", "page 2"}
    assert all(estimate_tokens(c.text) <= 120 + 4 for c in chunks)  # + the joiners between pieces
    assert all(c.sha256 == doc.sha256 for c in chunks)
    assert not any("budget" in c.text for c in chunks if c.locator == "page 2")  # no crossing
    for i in range(40):  # nothing lost
        assert any(f"Sentence {i} says" in c.text for c in chunks if c.locator == "page 1")


def test_consecutive_chunks_overlap_by_whole_pieces() -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 30 for i in range(12)]
    section = DocumentSection("\n\n".join(paragraphs), "§ Intro")
    chunks = chunk_document(doc_of(section), max_tokens=130, overlap=60)
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        last_paragraph = before.text.split("\n\n")[-1]
        assert after.text.startswith(last_paragraph)  # the next chunk repeats the last paragraph
    assert all(c.locator == "§ Intro" for c in chunks)


def test_long_paragraph_cut_at_sentences_and_a_run_without_breaks_by_characters() -> None:
    sentences = " ".join(f"Claim {i} holds because of reason {i}." for i in range(60))
    run = "x" * 5000
    chunks = chunk_document(doc_of(DocumentSection(sentences), DocumentSection(run, "page 9")),
                            max_tokens=50, overlap=0)
    prose = [c for c in chunks if c.locator == ""]
    assert all(c.text.endswith(".") for c in prose)  # cut between sentences
    assert " ".join(c.text for c in prose) == sentences
    hard = [c for c in chunks if c.locator == "page 9"]
    assert "".join(c.text for c in hard) == run and all(estimate_tokens(c.text) <= 50 for c in hard)


def test_table_rows_stay_whole_under_a_repeated_header() -> None:
    header = "| a | b |\n|---|---|"
    rows = [f"| {i} | value {i} |" for i in range(200)]
    chunks = chunk_document(doc_of(DocumentSection(header + "\n" + "\n".join(rows), "sheet S")),
                            max_tokens=100, overlap=0)
    assert len(chunks) > 3
    assert all(c.text.startswith(header + "\n| ") for c in chunks)
    assert all(estimate_tokens(c.text) <= 100 + 20 for c in chunks)
    assert [line for c in chunks for line in c.text.split("\n")[2:]] == rows
