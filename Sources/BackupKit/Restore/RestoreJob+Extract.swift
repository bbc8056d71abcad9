import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// What `restore-job --extract` left where.
public struct ExtractResult: Sendable, Equatable {
    /// The backup unpacked.
    public let backup: String
    /// The folder it is in now.
    public let directory: String
    /// The top-level names written there (database.dump, globals.sql, uploads, .env.backup, package.json, …).
    public let members: [String]
}

extension RestoreJob {
    /// `restore-job --extract DIR`: unpacks the backup (LATEST_BACKUP, else the newest trusted one) into `directory`
    /// for inspection, touching nothing live: no lease, no database, no application stopped, nothing of
    /// UPLOADS_DIR or ENV_FILE. The archive is read, decrypted and verified exactly as a restore reads it (its
    /// sha256 and every member against the manifest, the dump listed by pg_restore, the uploads through the same
    /// tree rules: no `..`, nothing through a symlink, no link out of the uploads, no device); everything is
    /// written into a private folder beside `directory` and renamed into place only once all of it has passed, so
    /// `directory` holds a whole, verified backup or nothing. It must be absent or an empty folder: nothing is
    /// ever overwritten. The result is mode 0700 (it holds the database and the .env in clear).
    public func extract(into directory: String) async throws -> ExtractResult {
        let destination = try Self.extractionDestination(directory, uploads: configuration.paths.uploadsDirectory)
        let target = try chooseTarget()
        logger.info("Extracting \(target.fileName) into \(destination) (nothing live is touched)")
        let parent = (destination as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let staging = FolderSwap.sibling(destination, "extract-\(UUID().uuidString.prefix(8).lowercased())")
        guard mkdir(staging, 0o700) == 0 else {
            throw ContingencyError.failed("cannot create the folder \(staging) beside \(destination): \(Self.lastError)")
        }
        var published = false
        defer { if !published { FolderSwap.removeTree(staging) } }

        // The dump is staged in the private folder itself, in clear (what an inspection wants), and linked under
        // its member name once verified.
        let dump = try StagedDump(staging: try LocalStaging(creating: staging), name: "database", sealed: false)
        let report = try await check(
            target,
            into: .init(
                dump: dump, uploads: "\(staging)/\(ArchiveLayout.uploadsDirectory)",
                env: "\(staging)/\(ArchiveLayout.envBackup)", others: staging))
        guard link(dump.file.path, "\(staging)/\(ArchiveLayout.databaseDump)") == 0 else {
            throw ContingencyError.failed("cannot write \(staging)/\(ArchiveLayout.databaseDump): \(Self.lastError)")
        }
        unlink(dump.file.path)
        if !report.hasUploads { FolderSwap.removeTree("\(staging)/\(ArchiveLayout.uploadsDirectory)") }
        if !report.hasEnv { unlink("\(staging)/\(ArchiveLayout.envBackup)") }
        let members = try FileManager.default.contentsOfDirectory(atPath: staging)
            .filter { !$0.hasSuffix(".partial") }.sorted()

        // An empty folder is replaced by the rename itself; one that got content meanwhile makes it fail.
        guard rename(staging, destination) == 0 else {
            throw ContingencyError.failed(
                "cannot put the extracted backup in place at \(destination): \(Self.lastError)",
                hint: "choose a new or empty folder for --extract")
        }
        published = true
        let written = members.joined(separator: ", ")
        logger.info("Extracted \(target.fileName) into \(destination): \(written) (verified; nothing live was touched)")
        return ExtractResult(backup: target.fileName, directory: destination, members: members)
    }

    /// `directory` made absolute, if it may receive an extraction: absent, or an empty folder (not a symlink), and
    /// not inside the live uploads folder.
    static func extractionDestination(_ directory: String, uploads: String?) throws -> String {
        guard !directory.isEmpty, !directory.utf8.contains(0) else {
            throw ContingencyError.configuration(
                "--extract needs a folder", hint: "e.g. restore-job --extract /srv/inspect")
        }
        var path = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        path = (path as NSString).standardizingPath
        let resolved = FolderSwap.resolved(path)
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                let kind = info.st_mode & S_IFMT == S_IFLNK ? "a symlink" : "not a folder"
                throw ContingencyError.configuration(
                    "--extract \(path): it is \(kind); --extract writes only into a new or empty folder",
                    hint: "choose a new folder (it is created)")
            }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            guard entries.isEmpty else {
                throw ContingencyError.configuration(
                    "--extract \(path): the folder is not empty (\(entries.count) entries); --extract never overwrites "
                        + "anything", hint: "choose a new or empty folder")
            }
        }
        if let uploads {
            let live = FolderSwap.resolved(uploads)
            if resolved == live || resolved.hasPrefix(live + "/") {
                throw ContingencyError.configuration(
                    "--extract \(path) is inside the live uploads folder \(live): the application would see the "
                        + "extracted files", hint: "choose a folder outside UPLOADS_DIR")
            }
        }
        return path
    }

    /// The text of `errno`.
    static var lastError: String { String(cString: strerror(errno)) }
}
