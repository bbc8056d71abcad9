import Testing

@testable import BackupCore

/// The COPY statements a restore runs itself: only the shape pg_dump writes, quoted again from its parts.
struct CopyStatementTests {
    static let accepted: [(text: String, sql: String)] = [
        ("COPY public.pgbench_accounts (aid, bid, abalance, filler) FROM stdin;\n",
         #"COPY "public"."pgbench_accounts" ("aid", "bid", "abalance", "filler") FROM stdin"#),
        ("COPY public.t  FROM stdin;\n", #"COPY "public"."t" FROM stdin"#),
        (#"COPY "My Schema"."Odd ""name""" ("Col 1", x$2, _y) FROM stdin;"#,
         #"COPY "My Schema"."Odd ""name""" ("Col 1", "x$2", "_y") FROM stdin"#),
        ("COPY app.\"café\" (\"名前\") FROM stdin;\n", "COPY \"app\".\"café\" (\"名前\") FROM stdin"),
    ]

    @Test("pg_dump's statements are taken and quoted again", arguments: accepted)
    func accepts(_ example: (text: String, sql: String)) throws {
        let statement = try #require(CopyStatement(parsing: example.text))
        #expect(statement.sql == example.sql)
        #expect(CopyStatement(parsing: statement.sql + ";\n") == statement)
    }

    static let refused: [String] = [
        "COPY public.t (a) FROM stdin; DROP TABLE public.t;\n",
        "COPY public.t (a) FROM stdin;\nDROP TABLE public.t;\n",
        "COPY t (a) FROM stdin;\n",
        "COPY public.t (a) FROM '/etc/passwd';\n",
        "COPY public.t (a) TO stdout;\n",
        "COPY public.t (a) FROM PROGRAM 'id';\n",
        "copy public.t (a) from stdin;\n",
        "COPY public.t (a) FROM stdin WITH OIDS;\n",
        "COPY public.t (a) FROM stdin;\n\n",
        "COPY public.t () FROM stdin;\n",
        "COPY public.t (a,b) FROM stdin;\n",
        "COPY public.T (a) FROM stdin;\n",
        "COPY public.\"\" (a) FROM stdin;\n",
        "COPY public.\"t (a) FROM stdin;\n",
        "COPY public.\"a\u{0}b\" (a) FROM stdin;\n",
        "COPY public.\"a\nb\" (a) FROM stdin;\n",
        "COPY 1public.t (a) FROM stdin;\n",
        "COPY public.t (a) FROM stdin",
        "",
    ]

    @Test("anything else is refused", arguments: refused)
    func refuses(_ text: String) {
        #expect(CopyStatement(parsing: text) == nil)
    }
}
