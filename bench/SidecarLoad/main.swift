// The benchmark's sidecar (bench/sidecar.sh), not a product: the sidecar's real HTTP application and probe loop
// (`buildApplication`, as `health-sidecar --loop` runs it) and, on a cue, one backup in the same process, built
// from the environment exactly as `backup-job` builds it. It stands for the admin API's `POST /api/backups`
// (a later issue), which will run backups inside the sidecar: the benchmark measures what that costs /healthz.
//
// Cues, one per line on standard input: `backup` (BACKUP_COMPRESSION from the environment) or `backup gzip` /
// `backup zstd`. Answers on standard output, each line starting with `SIDECAR-LOAD `: `pid <pid>` at start
// (the benchmark then polls /healthz until it answers), `started`, then `finished <seconds> <archive bytes>`
// or `failed <reason>`. End of input or SIGTERM: graceful shutdown.
import BackupCore
import BackupInterop
import BackupKit
import Foundation
import HealthSidecar
import Hummingbird
import Logging
import ServiceLifecycle

/// One line on stdout, flushed at once: the benchmark waits on these.
func answer(_ line: String) {
    FileHandle.standardOutput.write(Data("SIDECAR-LOAD \(line)\n".utf8))
}

/// Reads cues from standard input and runs one backup per cue, one at a time.
struct BackupOnCue: Service {
    let format: LogFormat

    func run() async throws {
        let cues = AsyncStream<String> { continuation in
            // readLine blocks: a thread of its own, never the cooperative pool.
            NamedThread.start("load.stdin") {
                while let line = readLine() { continuation.yield(line) }
                continuation.finish()
            }
        }
        await cancelWhenGracefulShutdown {
            for await cue in cues {
                let words = cue.split(separator: " ").map(String.init)
                guard words.first == "backup" else { continue }
                await backUp(compression: words.count > 1 ? words[1] : nil)
            }
        }
    }

    private func backUp(compression: String?) async {
        let logger = JobLogHandler.logger("Backup", format: format)
        let values = JobRunner.values(flags: [Settings.compression.name: compression])
        answer("started")
        do {
            // As BackupJobCommand builds it.
            let configuration = try BackupConfiguration.load(values)
            let stores = try Stores.open(configuration.store, logger: logger)
            var job = BackupJob(configuration: configuration, stores: stores, logger: logger)
            if configuration.appControl.kind != .command {
                job.appControl = configuration.appControl.makeAppControl(logger: logger)
            }
            let result = try await job.runCancellingOnLostLease()
            answer("finished \(result.duration) \(result.manifest.archive.size)")
        } catch {
            answer("failed \(error)".replacingOccurrences(of: "\n", with: " "))
        }
    }
}

ProcessSetup.once()
let values = JobRunner.values(flags: [:])
let format = JobRunner.logFormat(values)
let logger = JobLogHandler.logger("Health", format: format)
do {
    let configuration = try SidecarConfiguration.load(values, hostName: ProcessInfo.processInfo.hostName)
    let stores = try await Blocking.run { try Stores.open(configuration.store, logger: logger) }
    let app = buildApplication(SidecarContext(configuration: configuration, stores: stores, logger: logger))
    let cue = BackupOnCue(format: format)
    let group = ServiceGroup(
        configuration: .init(
            services: [
                .init(service: app),
                .init(service: cue, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    answer("pid \(getpid())")
    try await group.run()
} catch {
    logger.error("sidecar-load failed: \(error)")
    exit(1)
}
