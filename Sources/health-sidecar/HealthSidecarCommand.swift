import ArgumentParser
import BackupCore
import BackupKit
import Foundation
import HealthSidecar

@main
struct HealthSidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health-sidecar",
        abstract: "Probe the application's health: once (exit 0 healthy, 1 not), or as a service with --loop.",
        discussion: JobRunner.discussion(
            """
            Healthy means HTTP 200 from HEALTH_CHECK_URL within HEALTH_CHECK_TIMEOUT. Without --loop: one probe, \
            exit 0 when healthy, 1 when not (a Docker HEALTHCHECK or an exec probe of the application).
            --loop: the long-running service. Probes every HEALTH_CHECK_INTERVAL, writes this sidecar's heartbeat \
            to the store (.contingency/state/health/<SIDECAR_ID>.json), and after HEALTH_CHECK_FAILURES consecutive \
            failures (none counted during HEALTH_CHECK_START_PERIOD) creates the incident's rollback request, once \
            however many sidecars watch the app. Serves its own GET /healthz on SIDECAR_BIND:SIDECAR_PORT (200 \
            while its loop and store access work, else 503; the app's last result and the newest backup's age in \
            the body), GET /metrics (what the jobs publish in the store) and the admin API under /api/backups \
            (X-API-Token: API_ADMIN_TOKEN; without it the API answers 503: list, take, delete, pin and restore \
            backups, rollback/auto, cleanup; described in docs/openapi.yaml. Taking a backup or cleaning up needs \
            backup-job's and cleanup-job's settings as well), with GET /api/status for the status page that GET / \
            serves (no token, no data: the page asks the API with the token the operator types), and touches \
            LIVENESS_FILE. SIGTERM: graceful shutdown, exit 0.
            --liveness: exit 0 when LIVENESS_FILE was touched within --max-age, else 1: the image's HEALTHCHECK \
            and a Kubernetes exec probe for any --loop process (backup-job, restore-job, health-sidecar).
            """, settings: Executables.healthSidecar.settings))

    @Flag(help: "Keep probing, write heartbeats, request rollbacks and serve /healthz, /metrics and the admin API.") var loop = false
    @Flag(help: "Check LIVENESS_FILE's age instead of probing: exit 0 when at most --max-age old.") var liveness = false
    @Option(help: "With --liveness: the oldest the file may be (30s, 2m).") var maxAge = "60s"
    @Option(help: "HEALTH_CHECK_URL") var url: String?
    @Option(help: "SIDECAR_PORT, with --loop") var port: String?

    func validate() throws {
        if loop && liveness { throw ValidationError("--liveness checks another process's loop: use it without --loop") }
        if Schedule.parseInterval(maxAge) == nil && Int(maxAge) == nil {
            throw ValidationError("--max-age \(maxAge) is not a duration: write it like 30s, 2m or 90")
        }
    }

    func run() async throws {
        let values = JobRunner.values(flags: [Settings.healthCheckURL.name: url, Settings.sidecarPort.name: port])
        if liveness { throw ExitCode(Self.checkLiveness(values, maxAge: maxAge).rawValue) }
        if loop { throw ExitCode(await SidecarProcess.run(values: values).rawValue) }
        let status = await JobRunner.run(label: "Health", values: values, failure: "Health check failed") { logger in
            let probe = HealthProbe(configuration: try HealthConfiguration.load(values))
            guard probe.probeOnce(logger: logger).healthy else {
                throw ContingencyError.failed("the application is unhealthy")
            }
        }
        throw ExitCode(status.rawValue)
    }

    /// One line on stdout (alive) or stderr (not), as a probe's output is shown by `docker inspect`.
    static func checkLiveness(_ values: ConfigurationValues, maxAge: String) -> ExitStatus {
        let limit = TimeInterval(Int(maxAge) ?? Schedule.parseInterval(maxAge) ?? 60)
        guard let path = try? values.nonEmpty(Settings.livenessFile) else {
            FileHandle.standardError.write(Data("[Health] LIVENESS_FILE is empty: no liveness file to check\n".utf8))
            return .failed
        }
        let result = Liveness.check(path: path, maxAge: limit)
        let line: String
        switch result {
        case .alive(let age):
            line = "[Health] Alive: \(path) was touched \(DurationFormat.string(seconds: age)) ago\n"
        case .stale(let age):
            line =
                "[Health] Not alive: \(path) was last touched \(DurationFormat.string(seconds: age)) ago, more than \(maxAge): the loop is stuck or gone\n"
        case .missing(let reason):
            line = "[Health] Not alive: \(path) cannot be read (\(reason)): no --loop process has touched it\n"
        }
        (result.isAlive ? FileHandle.standardOutput : FileHandle.standardError).write(Data(line.utf8))
        return result.isAlive ? .ok : .failed
    }
}
