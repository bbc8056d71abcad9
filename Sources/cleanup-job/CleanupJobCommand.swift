import ArgumentParser
import BackupCore
import BackupKit
import Foundation

@main
struct CleanupJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup-job",
        abstract: "Apply the retention policy to the backup store (not available in this version).",
        discussion: JobRunner.discussion(
            """
            Retention (BACKUP_RETENTION_DAYS, never deleting the last verified backup) is not implemented yet: \
            this version exits 1 without deleting anything.
            """, settings: StoreConfiguration.settings))

    func run() async throws {
        FileHandle.standardError.write(Data("[Cleanup] cleanup-job is not implemented in this version; nothing was deleted\n".utf8))
        throw ExitCode(ExitStatus.failed.rawValue)
    }
}
