-- Staging tables the `sql` ERP connector inserts accepted orders and returns into (see
-- connectors/erp/README.md, "Sales documents into staging tables"). The ERP, or a script of the
-- seller's, imports new rows into real documents and marks them (imported_at, erp_number).
--
-- Written for PostgreSQL; it also runs on SQLite. On SQL Server use datetimeoffset for
-- TIMESTAMP WITH TIME ZONE, bit for BOOLEAN and nvarchar(max) for TEXT.
--
-- The UNIQUE constraint on reference is what makes a document exactly once: two hub workers
-- posting the same order at the same moment cannot both insert it; the loser's unique violation is
-- read as "already there". Do not drop it.
--
-- Give the hub's database user only what it needs, e.g. on PostgreSQL:
--   GRANT SELECT, INSERT ON hub_sales_documents, hub_sales_document_lines,
--                          hub_restocks, hub_restock_lines TO hub_reader;

CREATE TABLE hub_sales_documents (
    reference       VARCHAR(200)   NOT NULL,   -- the hub's key: "<channel>/<order id>"
    kind            VARCHAR(10)    NOT NULL,   -- "invoice" (a NIP was given) or "receipt"
    issued_at       TIMESTAMP WITH TIME ZONE NOT NULL,  -- UTC
    issued_date     DATE           NOT NULL,   -- the document's date in Poland
    channel         VARCHAR(100)   NOT NULL,
    order_id        VARCHAR(100)   NOT NULL,
    buyer_email     VARCHAR(255),
    nip             VARCHAR(20),               -- 10 digits for a Polish NIP
    company         VARCHAR(255),
    total_net       NUMERIC(14, 2) NOT NULL,
    total_vat       NUMERIC(14, 2) NOT NULL,
    total_gross     NUMERIC(14, 2) NOT NULL,
    currency        CHAR(3)        NOT NULL,
    payment_method  VARCHAR(100),
    cod             BOOLEAN        NOT NULL,   -- cash on delivery
    cod_amount      NUMERIC(14, 2),            -- what the carrier collects
    document        TEXT           NOT NULL,   -- the whole document as the hub's JSON (version 1)
    imported_at     TIMESTAMP WITH TIME ZONE,  -- set by the ERP's import
    erp_number      VARCHAR(50),               -- the ERP's document number, set by its import
    CONSTRAINT hub_sales_documents_reference UNIQUE (reference)
);

CREATE TABLE hub_sales_document_lines (
    reference        VARCHAR(200)   NOT NULL REFERENCES hub_sales_documents (reference),
    line_no          INTEGER        NOT NULL,
    sku              VARCHAR(100),             -- NULL: a line the channel sold without a SKU
    name             VARCHAR(500)   NOT NULL,
    quantity         INTEGER        NOT NULL,
    unit_price_gross NUMERIC(14, 2) NOT NULL,
    vat_rate         VARCHAR(3)     NOT NULL,  -- 23, 8, 5, 0, zw, np, oo
    gross            NUMERIC(14, 2) NOT NULL,
    PRIMARY KEY (reference, line_no)
);

CREATE TABLE hub_restocks (
    reference       VARCHAR(200)   NOT NULL,   -- "return/<channel>/<return id>"
    order_reference VARCHAR(200)   NOT NULL,   -- the sales document's reference
    warehouse       VARCHAR(100),
    created_at      TIMESTAMP WITH TIME ZONE NOT NULL,
    imported_at     TIMESTAMP WITH TIME ZONE,
    CONSTRAINT hub_restocks_reference UNIQUE (reference)
);

CREATE TABLE hub_restock_lines (
    reference    VARCHAR(200)   NOT NULL REFERENCES hub_restocks (reference),
    line_no      INTEGER        NOT NULL,
    sku          VARCHAR(100),
    quantity     INTEGER        NOT NULL,
    amount_gross NUMERIC(14, 2),               -- what the buyer gets back for the line, if known
    PRIMARY KEY (reference, line_no)
);
