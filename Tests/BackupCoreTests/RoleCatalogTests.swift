import BackupCore
import Foundation
import Testing

/// pg_dumpall 15's output for a cluster with every kind of line a restore reads.
let pgDumpallOutput = #"""
    --
    -- PostgreSQL database cluster dump
    --

    \restrict 7RuW3p4O5PdXYVPYc0trbeyJdB8NHc4wOyuQZyk5m51HTXo6fp0b5khQQVh2xgh

    SET default_transaction_read_only = off;

    SET client_encoding = 'UTF8';
    SET standard_conforming_strings = on;

    --
    -- Roles
    --

    CREATE ROLE "Mixed""Case";
    ALTER ROLE "Mixed""Case" WITH NOSUPERUSER NOINHERIT NOCREATEROLE CREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
    CREATE ROLE app_owner;
    ALTER ROLE app_owner WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD 'SCRAM-SHA-256$4096:cnHaODDPzNGZU2KFfcoZwg==$DCxLBlGHhn4RPfjWZThmFohyxfSBrOcCmKO7oew63Yg=:/xiH7/3R2usjeYUAVcD6jyFHBLsxZwH1Bu1AuaIQgr4=' VALID UNTIL '2030-01-01 00:00:00+00';
    CREATE ROLE postgres;
    ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
    CREATE ROLE reporting;
    ALTER ROLE reporting WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
    COMMENT ON ROLE reporting IS 'it''s reporting';

    --
    -- User Configurations
    --

    --
    -- User Config "app_owner"
    --

    ALTER ROLE app_owner SET search_path TO 'app', 'public';
    ALTER ROLE app_owner SET statement_timeout TO '5s';
    ALTER ROLE app_owner SET session_preload_libraries TO 'evil';

    --
    -- User Config "reporting"
    --

    ALTER ROLE reporting SET "DateStyle" TO 'ISO, MDY';


    --
    -- Role memberships
    --

    GRANT app_owner TO reporting WITH ADMIN OPTION GRANTED BY postgres;
    GRANT pg_monitor TO reporting GRANTED BY postgres;
    GRANT "Mixed""Case" TO app_owner WITH INHERIT FALSE, SET TRUE GRANTED BY postgres;


    --
    -- Role privileges on configuration parameters
    --

    GRANT SET ON PARAMETER work_mem TO reporting;


    \unrestrict 7RuW3p4O5PdXYVPYc0trbeyJdB8NHc4wOyuQZyk5m51HTXo6fp0b5khQQVh2xgh

    --
    -- PostgreSQL database cluster dump complete
    --

    """#

@Suite("globals.sql parsed into roles")
struct RoleCatalogTests {
    static let header =
        "SET client_encoding = 'UTF8';\nCREATE ROLE app;\nALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN;\n"

    @Test("pg_dumpall's output: names as quoted, allow-listed attributes, settings, comments, memberships")
    func realOutput() throws {
        let catalog = try RoleCatalog.parse(Array(pgDumpallOutput.utf8))
        #expect(catalog.roles.map(\.name) == [#"Mixed"Case"#, "app_owner", "postgres", "reporting"])
        let owner = try #require(catalog.role(named: "app_owner"))
        #expect(
            owner.attributes
                == RoleAttributes(
                    login: true, connectionLimit: 5, validUntil: "2030-01-01 00:00:00+00",
                    passwordHash:
                        "SCRAM-SHA-256$4096:cnHaODDPzNGZU2KFfcoZwg==$DCxLBlGHhn4RPfjWZThmFohyxfSBrOcCmKO7oew63Yg=:/xiH7/3R2usjeYUAVcD6jyFHBLsxZwH1Bu1AuaIQgr4="
                ))
        #expect(
            owner.settings == [
                RoleSetting(parameter: "search_path", values: ["app", "public"]),
                RoleSetting(parameter: "statement_timeout", values: ["5s"]),
                RoleSetting(parameter: "session_preload_libraries", values: ["evil"]),
            ])
        #expect(catalog.role(named: #"Mixed"Case"#)?.attributes == RoleAttributes(inherit: false, createDB: true))
        #expect(
            catalog.role(named: "postgres")?.attributes
                == RoleAttributes(
                    superuser: true, createRole: true, createDB: true, login: true, replication: true, bypassRLS: true))
        #expect(catalog.role(named: "reporting")?.comment == "it's reporting")
        #expect(
            catalog.role(named: "reporting")?.settings == [RoleSetting(parameter: "DateStyle", values: ["ISO, MDY"])])
        #expect(
            catalog.memberships.map { [$0.role, $0.member] } == [
                ["app_owner", "reporting"], ["pg_monitor", "reporting"], [#"Mixed"Case"#, "app_owner"],
            ])
        #expect(catalog.memberships[0].adminOption && catalog.memberships[0].inherit == nil)
        #expect(
            catalog.memberships[2].inherit == false && catalog.memberships[2].set == true
                && !catalog.memberships[2].adminOption)
        #expect(
            catalog.ignored.count == 1 && catalog.ignored[0].contains("GRANT SET ON PARAMETER work_mem TO reporting"))
    }

    /// Lines a forged globals.sql may hold, each refused with the reason the error gives.
    @Test(arguments: [
        // Case folding: pg_dumpall would have written "App".
        ("CREATE ROLE App;", "not quoted as pg_dumpall quotes names"),
        ("ALTER ROLE App WITH SUPERUSER;", "not quoted as pg_dumpall quotes names"),
        // Roles that exist on the server, or every role at once.
        ("ALTER ROLE postgres WITH SUPERUSER;", "which the file does not create"),
        ("ALTER ROLE ALL SET search_path TO 'evil';", "not quoted as pg_dumpall quotes names"),
        (#"ALTER ROLE "ALL" SET search_path TO 'evil';"#, "reserved word"),
        ("ALTER ROLE all SET search_path TO 'evil';", "reserved word"),
        ("ALTER ROLE CURRENT_USER WITH SUPERUSER;", "not quoted"),
        (#"CREATE ROLE "current_user";"#, "reserved word"),
        (#"CREATE ROLE "Current_Role";"#, "reserved word"),
        (#"CREATE ROLE "session_user";"#, "reserved word"),
        (#"CREATE ROLE "PUBLIC";"#, "reserved word"),
        ("CREATE ROLE public;", "reserved word"),
        (#"CREATE ROLE "none";"#, "reserved word"),
        ("CREATE ROLE pg_evil;", "predefined roles"),
        (#"CREATE ROLE "PG_Evil";"#, "predefined roles"),
        // Predefined roles granted to or altered.
        ("GRANT pg_execute_server_program TO pg_monitor;", "predefined roles"),
        ("ALTER ROLE pg_monitor WITH LOGIN;", "predefined roles"),
        ("GRANT pg_execute_server_program TO outsider;", "which the file does not create"),
        ("GRANT app TO postgres;", "which the file does not create"),
        ("GRANT postgres TO app;", "grants role postgres, which the file does not create"),
        ("GRANT app TO CURRENT_USER;", "not quoted"),
        (#"GRANT app TO "public";"#, "reserved word"),
        ("GRANT app TO app2 GRANTED BY CURRENT_USER;", "not quoted"),
        // More than one statement, or words after one.
        ("CREATE ROLE x; ALTER ROLE postgres WITH NOSUPERUSER;", "more than one statement"),
        ("SET x = 1; ALTER ROLE app WITH SUPERUSER;", "more than one statement"),
        ("CREATE ROLE x", "does not end with ;"),
        ("CREATE ROLE x WITH LOGIN;", "unexpected words"),
        ("ALTER ROLE app WITH LOGIN; --", "the character U+2D"),
        ("ALTER ROLE app WITH LOGIN /* */;", "the character U+2F"),
        // Attributes outside the allow-list, or given twice.
        ("ALTER ROLE app WITH LOGIN;", "given twice"),
        ("CREATE ROLE b;\nALTER ROLE b WITH SYSID 10;", "SYSID is not one a restore accepts"),
        ("CREATE ROLE b;\nALTER ROLE b WITH IN ROLE postgres;", "IN is not one a restore accepts"),
        ("CREATE ROLE b;\nALTER ROLE b WITH LOGIN NOLOGIN;", "LOGIN is given twice"),
        ("ALTER ROLE app RENAME TO postgres;", "only ALTER ROLE … WITH and ALTER ROLE … SET"),
        ("ALTER ROLE app IN DATABASE visual_db SET work_mem TO '1GB';", "only ALTER ROLE … WITH and ALTER ROLE … SET"),
        ("ALTER ROLE app RESET ALL;", "only ALTER ROLE … WITH and ALTER ROLE … SET"),
        // Passwords: hashes only.
        ("CREATE ROLE b;\nALTER ROLE b WITH LOGIN PASSWORD 'secret';", "never a plain-text password"),
        ("CREATE ROLE b;\nALTER ROLE b WITH PASSWORD 'md5abc';", "never a plain-text password"),
        ("CREATE ROLE b;\nALTER ROLE b WITH PASSWORD NULL;", "never a plain-text password"),
        ("CREATE ROLE b;\nALTER ROLE b WITH VALID UNTIL 'now''; DROP TABLE x; --';", "VALID UNTIL needs a timestamp"),
        ("CREATE ROLE b;\nALTER ROLE b WITH CONNECTION LIMIT 99999999999;", "CONNECTION LIMIT needs a number"),
        // Statements pg_dumpall --roles-only never writes.
        ("DROP ROLE postgres;", "not a statement pg_dumpall --roles-only writes"),
        ("SELECT pg_catalog.set_config('x', 'y', false);", "the character U+28"),
        ("COPY x FROM PROGRAM 'id';", "not a statement pg_dumpall --roles-only writes"),
        ("create role b;", "not a statement pg_dumpall --roles-only writes"),
        ("COMMENT ON ROLE postgres IS 'x';", "which the file does not create"),
        ("\\! id", "an unknown psql command"),
        ("\\connect template1", "an unknown psql command"),
        ("CREATE ROLE app;", "created twice"),
        // Quoting games and odd bytes.
        ("CREATE ROLE \"a\u{0}b\";", "a control character"),
        ("CREATE ROLE \"a\rb\";", "a control character"),
        ("CREATE ROLE b;\r", "a control character"),
        ("CREATE ROLE \"a\u{85}b\";", "a control character"),
        (#"CREATE ROLE "unterminated;"#, "an unterminated quote"),
        (#"CREATE ROLE "";"#, "an empty role name"),
        (#"CREATE ROLE U&"\0061pp";"#, "the character U+26"),
        ("CREATE ROLE b;\nALTER ROLE b WITH VALID UNTIL E'\\x27';", "a prefixed quote"),
        ("CREATE ROLE \(String(repeating: "a", count: 64));", "longer than the 63 bytes"),
        ("CREATE ROLE \"\(String(repeating: "é", count: 32))\";", "longer than the 63 bytes"),
        ("CREATE ROLE app$x;", "not quoted as pg_dumpall"),
        ("ALTER ROLE app SET search_path TO evil;", "a setting's value must be a string"),
        ("ALTER ROLE app SET search_path TO 'a' 'b';", "unexpected words"),
        ("GRANT SET ON PARAMETER work_mem TO app; GRANT pg_read_server_files TO app;", "more than one statement"),
        ("GRANT pg_read_server_files TO app PARAMETER;", "ON expected"),
    ])
    func hostileLine(line: String, reason: String) {
        let file = Self.header + line + "\n"
        #expect {
            try RoleCatalog.parse(Array(file.utf8))
        } throws: { error in
            let message = (error as? ContingencyError)?.message ?? ""
            return message.contains("is refused") && message.contains(reason) && message.contains("globals.sql line ")
                && message.contains("nothing was restored")
        }
    }

    @Test("the error names the line, escapes control characters and never shows a password")
    func errorMessage() throws {
        let file = Self.header + "CREATE ROLE b;\nALTER ROLE b WITH LOGIN PASSWORD 'hunter2' SUPERUSER\u{1B}[2J;\n"
        do {
            _ = try RoleCatalog.parse(Array(file.utf8))
            Issue.record("accepted")
        } catch let error as ContingencyError {
            #expect(
                error.message.hasPrefix("globals.sql line 5 (ALTER ROLE b WITH LOGIN PASSWORD …) is refused"),
                "\(error.message)")
            #expect(!error.message.contains("hunter2"))
            #expect(error.hint?.contains("RESTORE_NO_OWNER=true") == true)
        }
        let escaped = Self.header + "CREATE ROLE \"a\u{1B}[2Jb\";\n"
        #expect {
            try RoleCatalog.parse(Array(escaped.utf8))
        } throws: { error in
            let message = (error as? ContingencyError)?.message ?? ""
            return message.contains(#"CREATE ROLE "a\u{1b}[2Jb""#) && !message.contains("\u{1B}")
        }
    }

    @Test("a comment holding line breaks and tabs goes on over lines, as pg_dumpall writes it; a name never does")
    func multilineStrings() throws {
        let file = Self.header + "COMMENT ON ROLE app IS 'first line\n\tsecond; line\n''third''';\nCREATE ROLE b;\n"
        let catalog = try RoleCatalog.parse(Array(file.utf8))
        #expect(catalog.role(named: "app")?.comment == "first line\n\tsecond; line\n'third'")
        #expect(catalog.roles.map(\.name) == ["app", "b"])
        let hostile = [
            "CREATE ROLE \"a\nb\";\n", "COMMENT ON ROLE app IS 'never closed;\nCREATE ROLE b;\n", "CREATE ROLE \"a\tb\";\n",
        ]
        for line in hostile {
            #expect(throws: ContingencyError.self) { try RoleCatalog.parse(Array((Self.header + line).utf8)) }
        }
    }

    @Test("bytes that are not UTF-8 refuse the file")
    func notUTF8() {
        #expect(throws: ContingencyError.self) {
            try RoleCatalog.parse(Array("CREATE ROLE \"caf".utf8) + [0xE9] + Array("\";\n".utf8))
        }
    }

    @Test("comments, blank lines, SET lines and pg_dumpall's psql commands are read and ignored")
    func ignoredLines() throws {
        let file = "--\n-- anything; at all\n\n   \n\tSET x = 1;\nRESET ALL;\n\\restrict abc\n\\unrestrict abc\n"
        #expect(try RoleCatalog.parse(Array(file.utf8)) == RoleCatalog())
    }

    @Test(arguments: [
        ("SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy", true), ("md5" + String(repeating: "0a", count: 16), true),
        ("md5" + String(repeating: "0A", count: 16), false), ("md5abc", false),
        ("SCRAM-SHA-256$:c2FsdA==$c3RvcmVk:c2VydmVy", false),
        ("SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk", false), ("SCRAM-SHA-256$4096:c2 FsdA==$c3RvcmVk:c2VydmVy", false),
        ("plain text", false), ("", false),
    ])
    func passwordHashes(hash: String, accepted: Bool) {
        let file = Self.header + "CREATE ROLE b;\nALTER ROLE b WITH PASSWORD \(SQL.literal(hash));\n"
        #expect(((try? RoleCatalog.parse(Array(file.utf8))) != nil) == accepted)
    }

    @Test("a string left open over many long lines is refused in time, not read again from its start at every line")
    func longOpenString() throws {
        // One string opened and never closed, over the 1,000 lines a string may take, of 1 KiB each (a restore reads
        // up to 16 MiB of globals.sql: with lines of 16 KiB, reading the statement again at every line took minutes).
        let line = String(repeating: "a", count: 1 << 10)
        let file = "CREATE ROLE x;\nCOMMENT ON ROLE x IS '" + Array(repeating: line, count: 1000).joined(separator: "\n")
        // The processor time of this thread, not the wall clock: a loaded machine (the whole suite at once) must not
        // make a linear parse look quadratic.
        func cpuSeconds() -> Double {
            var now = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
            return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        }
        let start = cpuSeconds()
        #expect(throws: ContingencyError.self) { try RoleCatalog.parse(Array(file.utf8)) }
        let took = cpuSeconds() - start
        #expect(took < 5, "parsing took \(took) s of processor time")
    }

    @Test("a quote in a comment line or in a quoted name opens no string: the next lines are statements of their own")
    func quotesThatOpenNoString() throws {
        let file = "-- the team's roles\nCREATE ROLE \"o'brien\";\nCOMMENT ON ROLE \"o'brien\" IS 'it''s\nme';\nCREATE ROLE b;\n"
        let catalog = try RoleCatalog.parse(Array(file.utf8))
        #expect(catalog.roles.map(\.name) == ["o'brien", "b"])
        #expect(catalog.roles.first?.comment == "it's\nme")
    }
}

@Suite("SQL quoting")
struct SQLQuotingTests {
    @Test(arguments: [
        ("app", #""app""#), ("App", #""App""#), (#"a"b"#, #""a""b""#), ("all", #""all""#), ("", #""""#),
        ("é 🎉", #""é 🎉""#),
    ])
    func identifiers(name: String, quoted: String) { #expect(SQL.identifier(name) == quoted) }

    @Test(arguments: [
        ("x", "'x'"), ("it's", "'it''s'"), (#"a\b"#, #"E'a\\b'"#),
        (#"\'; DROP TABLE x; --"#, #"E'\\''; DROP TABLE x; --'"#), ("", "''"),
    ])
    func literals(text: String, quoted: String) { #expect(SQL.literal(text) == quoted) }

    @Test func nul() { #expect(SQL.containsNUL("a\u{0}") && !SQL.containsNUL("a")) }
}
