import BackupCore
import Testing

@Suite("What a restore does with a backup's roles")
struct RolePlanTests {
    static let catalog = { () -> RoleCatalog in
        // swift-format-ignore
        try! RoleCatalog.parse(Array(pgDumpallOutput.utf8))
    }()

    @Test("a fresh server: the needed roles and the roles they belong to, nothing more, no superuser-like attribute")
    func freshServer() throws {
        let plan = try RolePlan.make(
            catalog: Self.catalog, needed: ["reporting"], existing: ["postgres"], superuser: true)
        #expect(plan.creations.map(\.name) == [#"Mixed"Case"#, "app_owner", "reporting"])
        #expect(plan.creations[0].create == #"CREATE ROLE "Mixed""Case" WITH NOINHERIT CREATEDB"#)
        #expect(
            plan.creations[1].create.hasPrefix(
                #"CREATE ROLE "app_owner" WITH LOGIN CONNECTION LIMIT 5 VALID UNTIL '2030-01-01 00:00:00+00' PASSWORD 'SCRAM-SHA-256$4096:"#
            ))
        #expect(
            plan.creations[1].extras == [
                #"ALTER ROLE "app_owner" SET "search_path" TO 'app', 'public'"#,
                #"ALTER ROLE "app_owner" SET "statement_timeout" TO '5s'"#,
            ])
        #expect(
            plan.creations[2]
                == RolePlan.Creation(
                    name: "reporting", create: #"CREATE ROLE "reporting""#,
                    extras: [
                        #"ALTER ROLE "reporting" SET "DateStyle" TO 'ISO, MDY'"#,
                        #"COMMENT ON ROLE "reporting" IS 'it''s reporting'"#,
                    ]))
        #expect(
            plan.grants == [
                #"GRANT "app_owner" TO "reporting" WITH ADMIN OPTION"#,
                #"GRANT "Mixed""Case" TO "app_owner" WITH INHERIT FALSE, SET TRUE"#,
            ])
        #expect(plan.kept.isEmpty)
        #expect(plan.notes.contains { $0.contains("session_preload_libraries is not restored") })
        #expect(
            plan.notes.contains {
                $0.contains(#"not made a member of pg_monitor"#) && $0.contains(#"GRANT "pg_monitor" TO "reporting""#)
            })
        #expect(plan.notes.contains { $0.contains("privileges on configuration parameters are not restored") })
    }

    @Test(
        "a superuser in the backup is created without SUPERUSER, CREATEROLE and REPLICATION; BYPASSRLS only by a superuser"
    )
    func privilegedAttributes() throws {
        for superuser in [true, false] {
            let plan = try RolePlan.make(
                catalog: Self.catalog, needed: ["postgres"], existing: [], superuser: superuser)
            #expect(
                plan.creations.map(\.create) == [
                    #"CREATE ROLE "postgres" WITH LOGIN CREATEDB"# + (superuser ? " BYPASSRLS" : "")
                ])
            for attribute in ["SUPERUSER", "CREATEROLE", "REPLICATION"] {
                #expect(plan.notes.contains { $0.contains("postgres is created without \(attribute)") })
            }
            #expect(plan.notes.contains { $0.contains("without BYPASSRLS") } == !superuser)
        }
    }

    @Test("existing roles are never changed: kept, and no membership given to them or of them to a new role")
    func existingRoles() throws {
        let plan = try RolePlan.make(
            catalog: Self.catalog, needed: ["reporting", #"Mixed"Case"#], existing: ["postgres", "app_owner"],
            superuser: true)
        #expect(plan.creations.map(\.name) == [#"Mixed"Case"#, "reporting"])
        #expect(plan.kept == ["app_owner"])
        #expect(plan.grants.isEmpty)
        #expect(plan.notes.contains { $0.contains("reporting is not made a member of the existing role app_owner") })
        #expect(
            plan.notes.contains {
                $0.contains(#"app_owner exists and is left as it is: not made a member of Mixed"Case"#)
            })
        #expect(
            !plan.creations.contains {
                $0.create.contains("app_owner") || $0.extras.contains { $0.contains("app_owner") }
            })
    }

    @Test("every role of the file when the backup recorded none; nothing when all exist")
    func neededUnknownOrPresent() throws {
        let all = try RolePlan.make(catalog: Self.catalog, needed: nil, existing: ["postgres"], superuser: true)
        #expect(all.creations.map(\.name) == [#"Mixed"Case"#, "app_owner", "reporting"])
        #expect(all.kept == ["postgres"])
        let none = try RolePlan.make(
            catalog: Self.catalog, needed: ["app_owner", "pg_monitor"],
            existing: ["postgres", "app_owner", "reporting", #"Mixed"Case"#],
            superuser: true)
        #expect(none.creations.isEmpty && none.grants.isEmpty)
        // reporting is a member of app_owner: kept as it is, like the roles the dump names.
        #expect(none.kept == [#"Mixed"Case"#, "app_owner", "reporting"])
    }

    @Test("a needed role neither on the server nor in the file stops the restore before anything is done")
    func missingRole() {
        #expect {
            try RolePlan.make(catalog: Self.catalog, needed: ["reporting", "ghost"], existing: [], superuser: true)
        } throws: { error in
            (error as? ContingencyError)?.message.contains("the dump needs the roles ghost") == true
        }
    }

    @Test("names that need quoting are quoted, never folded")
    func quoting() throws {
        let file =
            #"CREATE ROLE "App";"# + "\n" + #"CREATE ROLE "x"" WITH SUPERUSER; --";"# + "\n"
            + #"GRANT "App" TO "x"" WITH SUPERUSER; --";"# + "\n"
        let plan = try RolePlan.make(
            catalog: try RoleCatalog.parse(Array(file.utf8)), needed: nil, existing: ["app"], superuser: true)
        #expect(plan.creations.map(\.create) == [#"CREATE ROLE "App""#, #"CREATE ROLE "x"" WITH SUPERUSER; --""#])
        #expect(plan.grants == [#"GRANT "App" TO "x"" WITH SUPERUSER; --""#])
    }

    @Test("a member of a needed role (the application's login role in the NOLOGIN owner) is created and made a member")
    func memberOfNeededRole() throws {
        let file = "CREATE ROLE app_owner;\nCREATE ROLE app;\nALTER ROLE app WITH LOGIN;\nGRANT app_owner TO app;\n"
        let plan = try RolePlan.make(
            catalog: try RoleCatalog.parse(Array(file.utf8)), needed: ["app_owner"], existing: [], superuser: true)
        #expect(plan.creations.map(\.name) == ["app_owner", "app"])
        #expect(plan.grants == [#"GRANT "app_owner" TO "app""#])
        // An existing login role is left as it is, and not made a member.
        let kept = try RolePlan.make(
            catalog: try RoleCatalog.parse(Array(file.utf8)), needed: ["app_owner"], existing: ["app"], superuser: true)
        #expect(kept.creations.map(\.name) == ["app_owner"] && kept.grants.isEmpty)
        #expect(kept.notes.contains { $0.contains("app exists and is left as it is") }, "\(kept.notes)")
    }
}
