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
    /// What a restore of this database will need: the roles owning its objects (schemas, relations,
    /// functions, types, the database), its extensions (not plpgsql, always there), and its size in bytes.
    public func requirements() throws -> (roles: [String], extensions: [String], size: Int64) {
        let roles = try query(
            """
            SELECT DISTINCT pg_get_userbyid(owner) FROM (
              SELECT nspowner AS owner FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
              UNION SELECT relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
              UNION SELECT proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
              UNION SELECT datdba FROM pg_database WHERE datname = current_database()
            ) owners ORDER BY 1
            """)
        let extensions = try query("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")
        let size = Int64(try query("SELECT pg_database_size(current_database())").value(0, 0) ?? "0") ?? 0
        return (
            (0..<roles.rowCount).compactMap { roles.value($0, 0) },
            (0..<extensions.rowCount).compactMap { extensions.value($0, 0) }, size
        )
    }
}
