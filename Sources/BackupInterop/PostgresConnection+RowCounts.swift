import BackupCore
import Foundation

extension PostgresConnection {
    /// Exact row counts of every table whose data pg_dump dumps (user tables, not those of extensions), by
    /// `schema.table`: recorded at backup time, compared by restore drills.
    /// With `lockingFirstWithTimeout`, every table is locked ACCESS SHARE before counting, waiting at most
    /// that many seconds.
    public func countRows(lockingFirstWithTimeout lockTimeout: Int? = nil) throws -> [String: Int64] {
        let tables = try query(
            """
            SELECT format('%I.%I', n.nspname, c.relname), n.nspname || '.' || c.relname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
            """)
        if let lockTimeout, tables.rowCount > 0 {
            try query("SET LOCAL lock_timeout = '\(lockTimeout)s'")
            let names = (0..<tables.rowCount).compactMap { tables.value($0, 0) }.joined(separator: ", ")
            try query("LOCK TABLE \(names) IN ACCESS SHARE MODE")
        }
        var counts: [String: Int64] = [:]
        for row in 0..<tables.rowCount {
            guard let quoted = tables.value(row, 0), let name = tables.value(row, 1) else { continue }
            try Task.checkCancellation()
            counts[name] = Int64(try query("SELECT count(*) FROM ONLY \(quoted)").value(0, 0) ?? "0") ?? 0
        }
        return counts
    }
}

extension PostgresConnection {
    /// What a restore of this database will need: the roles its dump names (see `neededRoles`), its extensions
    /// (not plpgsql, always there), and its size in bytes.
    public func requirements() throws -> (roles: [String], extensions: [String], size: Int64) {
        let roles = try neededRoles()
        let extensions = try query("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
        let size = Int64(try query("SELECT pg_database_size(current_database())").value(0, 0) ?? "0") ?? 0
        return (
            roles,
            (0..<extensions.rowCount).compactMap { extensions.value($0, 0) }, size
        )
    }

    /// The roles a restore of this database's dump needs (`neededRoles`), sorted by name.
    public func neededRoles() throws -> [String] {
        let roles = try query(Self.neededRoles)
        return (0..<roles.rowCount).compactMap { roles.value($0, 0) }
    }

    /// Every role a restore of this database's dump needs to exist: the owners of its schemas, relations,
    /// functions, types and of the database; and every role PostgreSQL records as depending on an object of
    /// this database (`pg_shdepend`): other owners (default privileges, user mappings, collations, …), the
    /// grantees and grantors of every privilege (tables, columns, sequences, functions, schemas, types, large
    /// objects, foreign servers, the database), the roles of default privileges and of row security policies.
    /// Not PUBLIC (0), not PostgreSQL's predefined `pg_*` roles (the server's own). The bootstrap superuser
    /// has no pg_shdepend rows; it is named when it owns one of the objects of the first list.
    static let neededRoles = """
        SELECT DISTINCT r.rolname FROM pg_roles r JOIN (
          SELECT nspowner AS role FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
          UNION SELECT relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          UNION SELECT proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          UNION SELECT typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          UNION SELECT datdba FROM pg_database WHERE datname = current_database()
          UNION SELECT d.refobjid FROM pg_shdepend d
            WHERE d.refclassid = 'pg_authid'::regclass
              AND (d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                OR (d.dbid = 0 AND d.classid = 'pg_database'::regclass
                  AND d.objid = (SELECT oid FROM pg_database WHERE datname = current_database())))
        ) named ON r.oid = named.role
        WHERE r.rolname NOT LIKE 'pg\\_%'
        ORDER BY 1
        """
}
