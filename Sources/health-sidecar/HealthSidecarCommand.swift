import ArgumentParser
import BackupCore
import BackupKit
import Foundation

@main
struct HealthSidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health-sidecar",
        abstract: "Probe the application's health, serve /healthz, /metrics and the admin API (not available in this version).",
        discussion: JobRunner.discussion(
            """
            Health probing, automatic rollback requests and the admin REST API are not implemented yet: this \
            version exits 1.
            """, settings: StoreConfiguration.settings))

    func run() async throws {
        FileHandle.standardError.write(Data("[Health] health-sidecar is not implemented in this version\n".utf8))
        throw ExitCode(ExitStatus.failed.rawValue)
    }
}
