import ArgumentParser
import BackupCore
import BackupKit
import Foundation

@main
struct HealthSidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health-sidecar",
        abstract: "Probe the application's health once: exit 0 when healthy, 1 when not.",
        discussion: JobRunner.discussion(
            """
            Healthy means HTTP 200 from HEALTH_CHECK_URL within HEALTH_CHECK_TIMEOUT. The long-running mode \
            (--loop: probing every HEALTH_CHECK_INTERVAL, rollback requests, /healthz, /metrics and the admin \
            API) is not implemented in this version.
            """, settings: HealthConfiguration.settings))

    @Flag(help: "Keep probing and serve HTTP (not implemented in this version).") var loop = false
    @Option(help: "HEALTH_CHECK_URL") var url: String?

    func run() async throws {
        let values = JobRunner.values(flags: [Settings.healthCheckURL.name: url])
        let loop = loop
        let status = await JobRunner.run(label: "Health", values: values, failure: "Health check failed") { logger in
            guard !loop else {
                throw ContingencyError.failed(
                    "health-sidecar --loop (continuous probing, rollback requests, the admin API) is not implemented in this version",
                    hint: "run it without --loop for a single probe")
            }
            let probe = HealthProbe(configuration: try HealthConfiguration.load(values))
            guard probe.probeOnce(logger: logger).healthy else {
                throw ContingencyError.failed("the application is unhealthy")
            }
        }
        throw ExitCode(status.rawValue)
    }
}
