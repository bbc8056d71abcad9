import Foundation
import Testing

@testable import BackupCore

/// 2025-01-15T14:30:00Z
private let began = Date(timeIntervalSince1970: 1_736_951_400)

private func sampleMetadata(
    version: String? = "2.4.1", nodeVersion: String? = "20.11.0", uploads: Bool = true
) -> BackupMetadata {
    BackupMetadata(
        producer: "backup-job 1.0.0", timestamp: "2025-01-15_14-30-00", created: began, database: "visual",
        version: version, nodeVersion: nodeVersion, pgDumpVersion: "15.18", serverVersion: "15.18",
        hostname: "backup-7f9c", compression: .gzip,
        members: [
            .init(name: ArchiveLayout.databaseDump, size: 1_048_576, sha256: String(repeating: "a", count: 64)),
            .init(name: ArchiveLayout.envBackup, size: 412, sha256: String(repeating: "b", count: 64)),
            .init(name: ArchiveLayout.packageJSON, size: 2_048, sha256: String(repeating: "c", count: 64)),
        ],
        uploads: uploads
            ? .init(files: 1_204, directories: 37, bytes: 523_000_000, sha256: String(repeating: "d", count: 64)) : nil,
        missing: uploads ? [ArchiveLayout.packageLock] : [])
}

private func sampleManifest(
    size: Int64 = 524_288_000, encrypted: Bool = false, verified: Manifest.Verification? = nil,
    metadata: BackupMetadata = sampleMetadata()
) -> Manifest {
    Manifest(
        metadata: metadata,
        archive: .init(
            name: "visual_backup_2025-01-15_14-30-00.tar.gz\(encrypted ? ".age" : "")", size: size,
            sha256: String(repeating: "e", count: 64), encrypted: encrypted),
        verified: verified)
}

private func encode(_ value: some Encodable) throws -> Data { try ContingencyJSON.encoder().encode(value) }

private func jsonObject(_ data: Data) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

private func decodeManifest(_ object: [String: Any]) throws -> Manifest {
    try ContingencyJSON.decoder().decode(Manifest.self, from: JSONSerialization.data(withJSONObject: object))
}

struct ManifestTests {
    // MARK: - Round trips

    struct ManifestCase: Sendable, CustomTestStringConvertible {
        let label: String
        let manifest: Manifest
        var testDescription: String { label }
    }

    @Test(arguments: [
        ManifestCase(label: "plain", manifest: sampleManifest()),
        ManifestCase(label: "encrypted", manifest: sampleManifest(encrypted: true)),
        ManifestCase(
            label: "verified",
            manifest: sampleManifest(
                verified: .init(at: Date(timeIntervalSince1970: 1_737_000_000), ok: true, detail: "restored into drill_db"))),
        ManifestCase(
            label: "failed drill",
            manifest: sampleManifest(
                verified: .init(at: Date(timeIntervalSince1970: 1_737_000_000), ok: false, detail: "sha256 mismatch"))),
        ManifestCase(
            label: "no version, no uploads",
            manifest: sampleManifest(metadata: sampleMetadata(version: nil, nodeVersion: nil, uploads: false))),
        ManifestCase(label: "empty archive", manifest: sampleManifest(size: 0)),
    ])
    func manifestRoundTrips(_ row: ManifestCase) throws {
        let data = try encode(row.manifest)
        let decoded = try ContingencyJSON.decoder().decode(Manifest.self, from: data)
        #expect(decoded == row.manifest)
        // Encoding is deterministic (sorted keys), so a re-encode is byte-identical.
        #expect(try encode(decoded) == data)
    }

    @Test func metadataRoundTrips() throws {
        let metadata = sampleMetadata()
        let data = try encode(metadata)
        #expect(try ContingencyJSON.decoder().decode(BackupMetadata.self, from: data) == metadata)
        let object = try jsonObject(data)
        #expect(object["format"] as? String == "contingency-backup/1")
        #expect(object["node_version"] as? String == "20.11.0")
        #expect(object["archive"] == nil)
        #expect(object["complete"] == nil)
    }

    // MARK: - The JSON layout

    @Test func manifestKeepsTheRunbookKeysAtTopLevel() throws {
        let object = try jsonObject(try encode(sampleManifest()))

        #expect(object["timestamp"] as? String == "2025-01-15_14-30-00")
        #expect(object["database"] as? String == "visual")
        #expect(object["version"] as? String == "2.4.1")
        #expect(object["node_version"] as? String == "20.11.0")
        #expect(object["pg_dump_version"] as? String == "15.18")
        #expect(object["server_version"] as? String == "15.18")
        #expect(object["hostname"] as? String == "backup-7f9c")
        #expect(object["compression"] as? String == "gzip")
        #expect(object["format"] as? String == BackupMetadata.currentFormat)

        let archive = try #require(object["archive"] as? [String: Any])
        #expect(archive["name"] as? String == "visual_backup_2025-01-15_14-30-00.tar.gz")
        #expect((archive["size"] as? NSNumber)?.int64Value == 524_288_000)
        #expect(archive["encrypted"] as? Bool == false)

        #expect(object["complete"] as? Bool == true)
        #expect(object["backup_size"] as? String == "500 MB")
        // `verified` is present and null until a drill runs.
        #expect(object.keys.contains("verified"))
        #expect(object["verified"] is NSNull)

        // The metadata is flattened, not nested, and no camelCase spelling leaks out.
        for key in ["metadata", "nodeVersion", "pgDumpVersion", "serverVersion", "backupSize"] {
            #expect(object[key] == nil, "unexpected key \(key)")
        }

        let members = try #require(object["members"] as? [[String: Any]])
        // Members keep archive order (sorted keys do not reorder arrays).
        #expect(members.map { $0["name"] as? String } == ["database.dump", ".env.backup", "package.json"])
        #expect(object["missing"] as? [String] == ["package-lock.json"])
        let uploads = try #require(object["uploads"] as? [String: Any])
        #expect(uploads["files"] as? Int == 1_204)
    }

    @Test func absentOptionalsAreNullOrMissingButDecodeAsNil() throws {
        let manifest = sampleManifest(metadata: sampleMetadata(version: nil, nodeVersion: nil, uploads: false))
        let object = try jsonObject(try encode(manifest))
        #expect(object["version"] == nil || object["version"] is NSNull)
        #expect(object["node_version"] == nil || object["node_version"] is NSNull)
        let decoded = try decodeManifest(object)
        #expect(decoded.metadata.version == nil)
        #expect(decoded.metadata.nodeVersion == nil)
        #expect(decoded.metadata.uploads == nil)
        #expect(object["completed"] == nil && decoded.completed == nil && decoded.duration == nil)
    }

    @Test("the completion time round-trips and gives the duration; one before the start gives none")
    func completionAndDuration() throws {
        var manifest = sampleManifest()
        manifest.completed = manifest.metadata.created.addingTimeInterval(83)
        let decoded = try ContingencyJSON.decoder().decode(Manifest.self, from: try encode(manifest))
        #expect(decoded.completed == manifest.completed)
        #expect(decoded.duration == 83)
        manifest.completed = manifest.metadata.created.addingTimeInterval(-1)
        #expect(manifest.duration == nil)
        manifest.completed = manifest.metadata.created.addingTimeInterval(Manifest.longestBackup + 1)
        #expect(manifest.duration == nil, "a completion days later is not a backup's duration")
    }

    @Test("a completion time that does not decode leaves the manifest readable, its completion unknown")
    func malformedCompletion() throws {
        var object = try jsonObject(try encode(sampleManifest()))
        for value: Any in ["yesterday", "2025-13-45T99:30:00Z", 12, ["x"]] {
            object["completed"] = value
            let decoded = try decodeManifest(object)
            #expect(decoded.completed == nil && decoded.archive.size == 524_288_000)
        }
    }

    @Test(arguments: [
        (Int64(0), "0 B"),
        (512, "512 B"),
        (1_536, "1.5 KB"),
        (524_288_000, "500 MB"),
        (1_288_490_189, "1.2 GB"),
    ])
    func backupSizeIsFormatted(_ row: (Int64, String)) throws {
        let object = try jsonObject(try encode(sampleManifest(size: row.0)))
        #expect(object["backup_size"] as? String == row.1)
        #expect(((object["archive"] as? [String: Any])?["size"] as? NSNumber)?.int64Value == row.0)
    }

    @Test func datesAreISO8601InUTC() throws {
        let manifest = sampleManifest(verified: .init(at: Date(timeIntervalSince1970: 1_737_000_000), ok: true, detail: "ok"))
        let data = try encode(manifest)
        let object = try jsonObject(data)
        #expect(object["created"] as? String == "2025-01-15T14:30:00Z")
        let verified = try #require(object["verified"] as? [String: Any])
        #expect(verified["at"] as? String == "2025-01-16T04:00:00Z")
        #expect(verified["ok"] as? Bool == true)
        // Slashes are written as they are, so `grep contingency-backup/1` finds manifests.
        #expect(String(decoding: data, as: UTF8.self).contains("\"contingency-backup/1\""))
    }

    @Test func decodingReadsISO8601Dates() throws {
        var object = try jsonObject(try encode(sampleManifest()))
        object["created"] = "2024-02-29T23:59:59Z"
        #expect(try decodeManifest(object).metadata.created == Date(timeIntervalSince1970: 1_709_251_199))
        object["created"] = 1_709_251_199  // seconds since 1970 are not ISO 8601
        #expect(throws: DecodingError.self) { try decodeManifest(object) }
    }

    // MARK: - Refused manifests

    @Test(arguments: ["archive", "database", "timestamp", "pg_dump_version", "members", "format"])
    func decodingAManifestMissingARequiredKeyFails(_ key: String) throws {
        var object = try jsonObject(try encode(sampleManifest()))
        #expect(object[key] != nil)
        object[key] = nil
        #expect(throws: DecodingError.self) { try decodeManifest(object) }
    }

    @Test func aBareMetadataFileIsNotAManifest() throws {
        // metadata.json has everything but `archive`: it must not be mistaken for a commit marker.
        let object = try jsonObject(try encode(sampleMetadata()))
        #expect(throws: DecodingError.self) { try decodeManifest(object) }
    }

    @Test func derivedKeysAreNotNeededToDecode() throws {
        var object = try jsonObject(try encode(sampleManifest()))
        object["complete"] = nil
        object["backup_size"] = nil
        object["verified"] = nil
        let decoded = try decodeManifest(object)
        #expect(decoded == sampleManifest())
    }

    // A manifest comes from the store: a size near Int64.max made backup-job's "twice the last backup" free-space
    // rule trap (SIGILL) on every run; a negative one turns sums and comparisons upside down.
    @Test(arguments: [
        ("archive.size", Int64.max), ("archive.size", -1), ("members[database.dump].size", Int64.max / 2 + 1),
        ("uploads.bytes", Manifest.maximumFigure + 1), ("uploads.files", -5), ("database_size", Int64.min),
        ("tables[public.users]", -1),
    ])
    func aFigureOutsideItsRangeIsRefused(_ row: (field: String, value: Int64)) throws {
        var object = try jsonObject(try encode(sampleManifest()))
        switch row.field {
        case "archive.size":
            var archive = try #require(object["archive"] as? [String: Any])
            archive["size"] = row.value
            object["archive"] = archive
        case "members[database.dump].size":
            var members = try #require(object["members"] as? [[String: Any]])
            members[0]["size"] = row.value
            object["members"] = members
        case "uploads.bytes", "uploads.files":
            var uploads = try #require(object["uploads"] as? [String: Any])
            uploads[String(row.field.dropFirst("uploads.".count))] = row.value
            object["uploads"] = uploads
        case "database_size":
            object["database_size"] = row.value
        default:
            object["tables"] = ["public.users": row.value]
        }
        let error = try #require(throws: DecodingError.self) { try decodeManifest(object) }
        #expect("\(error)".contains("\(row.field) is \(row.value)"), "\(error)")
    }

    @Test func theLargestFiguresAreRead() throws {
        var object = try jsonObject(try encode(sampleManifest(size: Manifest.maximumFigure)))
        object["database_size"] = 0
        object["tables"] = ["public.users": Manifest.maximumFigure]
        let decoded = try decodeManifest(object)
        #expect(decoded.archive.size == Manifest.maximumFigure)
        #expect(decoded.metadata.tables?["public.users"] == Manifest.maximumFigure)
    }

    @Test func metadataLooksUpMembersByName() {
        let metadata = sampleMetadata()
        #expect(metadata.member(named: "database.dump")?.size == 1_048_576)
        #expect(metadata.member(named: ".env.backup")?.size == 412)
        #expect(metadata.member(named: "package-lock.json") == nil)
    }

    @Test("an uploads summary matches one read with the same counts, bytes and digest; without the digest, on counts and bytes alone")
    func uploadsSummaryMatches() {
        let recorded = BackupMetadata.UploadsSummary(files: 3, directories: 1, bytes: 300, sha256: "aa", links: 1)
        let read = BackupMetadata.UploadsSummary(files: 3, directories: 1, bytes: 300, sha256: "bb", links: 1)
        #expect(!recorded.matches(read))
        #expect(recorded.matches(read, digest: false))
        #expect(recorded.matches(recorded))
        for other in [
            BackupMetadata.UploadsSummary(files: 2, directories: 1, bytes: 300, sha256: "aa", links: 1),
            BackupMetadata.UploadsSummary(files: 3, directories: 2, bytes: 300, sha256: "aa", links: 1),
            BackupMetadata.UploadsSummary(files: 3, directories: 1, bytes: 299, sha256: "aa", links: 1),
            BackupMetadata.UploadsSummary(files: 3, directories: 1, bytes: 300, sha256: "aa", links: 0),
        ] {
            #expect(!recorded.matches(other, digest: false), "\(other)")
            #expect(!recorded.matches(other), "\(other)")
        }
        #expect(!recorded.matches(nil, digest: false))
        // Links compared only where recorded.
        let older = BackupMetadata.UploadsSummary(files: 3, directories: 1, bytes: 300, sha256: "aa")
        #expect(older.matches(read, digest: false))
    }
}
