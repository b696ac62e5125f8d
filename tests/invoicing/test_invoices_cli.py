"""The invoices commands on a real config and database: issue (a consumer's on request), list, show with its
FA(3), correct by returned units and by price, retry a problem once fixed; every bad input one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from hub.invoicing.schemas import fa3, problems
from hub.orders.models import Order
from hub.platform.db import transaction
from tests.cli.test_cli import one_line_error, run_cli
from tests.invoicing.support import add_order

CONFIG = """
[database]
url = "{url}"
[invoicing]
enabled = true
[invoicing.seller]
name = "Sklep Test sp. z o.o."
nip = "5260250274"
street = "ul. Magazynowa 5"
city = "Poznań"
postal_code = "60-001"
bank_account = "PL61109010140000071219812874"
"""


def test_invoice_commands(db_url: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(CONFIG.format(url=db_url))
    business = add_order(engine, "S1", [("A", 2, "123.00", "23", "goods"), (None, 1, "15.99", None, "shipping")])
    consumer = add_order(engine, "S2", [("A", 1, "123.00", "23", "goods")], nip=None)
    bad_nip = add_order(engine, "S3", [("A", 1, "123.00", "23", "goods")], nip="1234567890")

    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, "--config", str(config), "invoices", *args)

    code, out, err = cli("issue", str(business), "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["number"].startswith("FV/1/") and first["created"]
    assert first["gross"] == "261.99" and first["state"] == "outside_ksef"
    code, out, _ = cli("issue", str(business), "--json")  # again: the same invoice
    assert code == 0 and json.loads(out)["id"] == first["id"] and not json.loads(out)["created"]
    code, out, _ = cli("issue", str(consumer))  # a consumer's on request
    assert code == 0 and "/2/" in out

    code, _, err = cli("issue", str(bad_nip))
    assert code == 2 and "NIP '1234567890'" in one_line_error(err)
    code, out, _ = cli("list", "--state", "problem", "--json")
    problem = json.loads(out)
    assert [p["order_id"] for p in problem] == [bad_nip] and problem[0]["number"] is None

    code, out, _ = cli("show", str(first["id"]), "--xml")
    assert code == 0 and problems(fa3(), out.strip().encode()) == []
    code, out, _ = cli("show", str(first["id"]), "--json")
    lines = json.loads(out)["lines"]
    assert [line["name"] for line in lines] == ["Towar A", "Dostawa kurierem"]

    code, out, err = cli("correct", str(first["id"]), "--reason", "zwrot 1 szt.", "--returned", "1=1", "--json")
    assert code == 0, err
    correction = json.loads(out)
    assert correction["kind"] == "KOR" and correction["gross"] == "-123.00" and correction["number"].startswith("FK/1/")
    code, out, _ = cli("show", str(correction["id"]), "--xml")
    assert problems(fa3(), out.strip().encode()) == [] and "FV/" in out
    code, out, _ = cli("correct", str(first["id"]), "--reason", "rabat", "--price", "1=100.00", "--json")
    assert code == 0 and json.loads(out)["gross"] == "-46.00"

    for args, message in [
        (("correct", str(first["id"]), "--reason", "x", "--returned", "9=1"), "has no line 9"),
        (("correct", str(first["id"]), "--reason", "x", "--returned", "1=5"), "more than the 2 invoiced"),
        (("correct", str(first["id"]), "--reason", "x", "--price", "1=200"), "not below the invoiced 123"),
        (("correct", str(first["id"]), "--reason", "x"), "say what changes"),
        (("show", "999"), "no invoice with id 999"),
        (("issue", "999"), "no order with id 999"),
        (("retry", str(first["id"])), "only an invoice with a problem"),
        (("send",), "invoicing.ksef = None is not a KSeF connector"),
    ]:
        code, _, err = cli(*args)
        assert code == 2, (args, err)
        assert message in one_line_error(err), (args, err)

    for args, message in [
        (("correct", str(first["id"]), "--reason", "x", "--price", "one=1"), "expected LINE=VALUE"),
        (("list", "--period", "2026-13"), "expected a month as YYYY-MM"),
    ]:
        with pytest.raises(SystemExit) as exited:  # argparse's own exit
            cli(*args)
        assert exited.value.code == 2 and message in one_line_error(capsys.readouterr().err)

    # the buyer corrects the NIP in the channel; the problem invoice is issued under the next number
    with transaction(engine) as session:
        order = session.get(Order, bad_nip)
        session.execute(update(Order).where(Order.id == bad_nip).values(
            invoice={**order.invoice, "nip": "7740001454"}))
    code, out, err = cli("retry", str(problem[0]["id"]), "--json")
    assert code == 0, err
    assert json.loads(out)["number"].startswith("FV/3/")


JPK_SELLER = """tax_office = "3021"
voivodeship = "wielkopolskie"
county = "Poznań"
commune = "Poznań"
building = "5"
"""


def test_a_months_exports_for_the_accountant(db_url: str, engine: Engine, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    from pypdf import PdfReader

    from hub.invoicing.schemas import jpk_fa4
    from hub.kernel.clock import utcnow

    config = tmp_path / "hub.toml"
    config.write_text(CONFIG.format(url=db_url))
    for n in range(3):
        add_order(engine, f"S{n}", [("A", n + 1, "123.00", "23", "goods"), ("B", 1, "10.80", "8", "goods")])
    add_order(engine, "S9", [("A", 1, "50.00", "23", "goods")], nip=None)
    period = utcnow().strftime("%Y-%m")

    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, "--config", str(config), "invoices", *args)

    for order_id in (1, 2, 3, 4):
        assert cli("issue", str(order_id))[0] == 0
    assert cli("correct", "1", "--reason", "zwrot", "--returned", "1=1")[0] == 0
    out_dir = tmp_path / "out"

    code, out, err = cli("export", "--period", period, "--format", "csv", "--out", str(out_dir), "--json")
    assert code == 0, err
    register = out_dir / f"rejestr_sprzedazy_{period}.csv"
    rows = list(csv.DictReader(register.open(encoding="utf-8")))
    assert [r["number"].split("/")[0] for r in rows] == ["FK", "FV", "FV", "FV", "FV"]
    correction, fv1 = rows[0], rows[1]
    assert correction["kind"] == "KOR" and correction["corrected_number"].startswith("FV/1/")
    assert correction["gross"] == "-123.00"
    assert (fv1["net_23"], fv1["vat_23"], fv1["net_8"], fv1["vat_8"]) == ("100.00", "23.00", "10.00", "0.80")
    assert rows[-1]["buyer_tax_id"] == "" and rows[-1]["ksef_number"] == "BFK"  # a consumer's, outside KSeF

    code, out, err = cli("export", "--period", period, "--format", "fa3", "--out", str(out_dir / "fa3"), "--json")
    assert code == 0 and json.loads(out)["invoices"] == 5
    assert all(problems(fa3(), path.read_bytes()) == [] for path in (out_dir / "fa3").glob("*.xml"))

    code, _, err = cli("export", "--period", period, "--format", "jpk_fa", "--out", str(out_dir))
    assert code == 2 and "JPK_FA needs the seller's tax_office, voivodeship, county, commune, building" in \
        one_line_error(err)
    config.write_text(CONFIG.format(url=db_url) + JPK_SELLER)
    code, out, err = cli("export", "--period", period, "--format", "jpk_fa", "--out", str(out_dir), "--json")
    assert code == 0, err
    jpk = (out_dir / f"JPK_FA_{period}.xml").read_bytes()
    assert problems(jpk_fa4(), jpk) == [] and jpk.count(b"<tns:Faktura ") == 5
    assert b"<tns:LiczbaFaktur>5</tns:LiczbaFaktur>" in jpk and b"KOREKTA" in jpk and b"ns0:" not in jpk

    code, out, err = cli("export", "--period", period, "--format", "pdf", "--out", str(out_dir / "pdf"), "--json")
    assert code == 0, err
    pdfs = sorted((out_dir / "pdf").glob("*.pdf"))
    assert len(pdfs) == 5
    first_pdf = next(p for p in pdfs if p.name.startswith("FV_1_"))
    text = PdfReader(str(first_pdf)).pages[0].extract_text()
    assert "Faktura VAT nr FV/1/" in text and "Nabywca" in text and "Do zapłaty: 133.80 PLN" in text
    assert "OFFLINE" not in text  # no KSeF connector here: an invoice outside KSeF carries no code
    consumer = PdfReader(str(next(p for p in pdfs if p.name.startswith("FV_4_")))).pages[0].extract_text()
    assert "NIP" not in consumer.split("Nabywca")[1]

    code, out, err = cli("export", "--period", period, "--format", "epp", "--out", str(out_dir), "--json")
    assert code == 0, err
    epp = (out_dir / f"faktury_{period}.epp").read_bytes()
    assert epp.endswith(b"\r\n\r\n") and b"\n" not in epp.replace(b"\r\n", b"")  # CRLF, an empty line at the end
    text = epp.decode("windows-1250")
    assert text.count("[NAGLOWEK]") == 5 and text.startswith("[INFO]") and '"KFS"' in text and "Poznań" in text
    assert '"5260250274"' in text  # the file's sender: the seller of [invoicing.seller]

    code, _, err = cli("export", "--period", "2020-01", "--format", "csv", "--out", str(out_dir))
    assert code == 2 and "no invoices issued in 2020-01" in one_line_error(err)


def test_offline_invoices_their_deadlines_and_announced_outages(db_url: str, engine: Engine, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """hub invoices list --offline and hub status show offline invoices by deadline; an announced failure
    recorded with hub invoices outage moves the deadline (7 working days after its end); bad input one line."""
    from datetime import date

    from hub.invoicing.models import Invoice
    from hub.invoicing.offline import deadline

    config = tmp_path / "hub.toml"
    config.write_text(CONFIG.format(url=db_url))

    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, "--config", str(config), *args)

    code, out, err = cli("invoices", "issue", str(add_order(engine, "S1", [("A", 1, "10.00", "23", "goods")])),
                         "--json")
    assert code == 0, err
    invoice_id, issued = json.loads(out)["id"], date(2025, 7, 8)
    with transaction(engine) as session:  # as the sender leaves an invoice KSeF could not take on 8 July 2025
        session.execute(update(Invoice).where(Invoice.id == invoice_id).values(
            state="issued", offline=True, issue_date=issued, ksef_deadline=deadline(issued)))
    code, out, _ = cli("invoices", "list", "--offline", "--json")
    assert code == 0 and [(r["id"], r["ksef_deadline"]) for r in json.loads(out)] == [(invoice_id, "2025-07-09")]
    code, out, _ = cli("status")
    assert "offline invoices not yet in KSeF: 1" in out and "1 due in KSeF by 2025-07-09 - OVERDUE" in out

    code, out, _ = cli("invoices", "outage", "--kind", "failure", "--from", "2025-07-09", "--json")
    assert code == 0 and json.loads(out)["deadlines_refreshed"] == 1
    code, out, _ = cli("status")
    assert "1 due in KSeF by the working day after the KSeF outage ends" in out
    code, out, _ = cli("invoices", "outage", "--kind", "failure", "--from", "2025-07-09", "--to", "2025-07-12")
    assert code == 0 and "failure" in out and "2025-07-12" in out
    code, out, _ = cli("invoices", "list", "--offline", "--json")
    assert json.loads(out)[0]["ksef_deadline"] == "2025-07-22"  # tryby-offline.md's own example

    for args, needle in ((("--kind", "failure"), "--from"), (("--from", "2025-07-09"), "--kind"),
                         (("--kind", "failure", "--from", "2025-07-09", "--to", "2025-07-01"), "before")):
        code, _, err = cli("invoices", "outage", *args)
        assert code == 2 and needle in one_line_error(err), (args, err)
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusal: one line, exit 2
        cli("invoices", "outage", "--kind", "failure", "--from", "9 July")
    assert exit_info.value.code == 2 and "YYYY-MM-DD" in one_line_error(capsys.readouterr().err)
