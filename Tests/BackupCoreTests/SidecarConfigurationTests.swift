import Foundation
import Testing

@testable import BackupCore

/// `health-sidecar --loop`'s settings: defaults, and values refused before anything runs.
@Suite("Sidecar configuration")
struct SidecarConfigurationTests {
    static func load(_ environment: [String: String]) throws(ContingencyError) -> SidecarConfiguration {
        let values = ConfigurationValues(environment: environment) { path in
            throw CocoaError(.fileNoSuchFile, userInfo: ["path": path])
        }
        return try SidecarConfiguration.load(values, hostName: "host-1")
    }

    @Test("defaults: the runbook's 5 min / 10 s / 3 failures, port 8080 on every address, the host's name")
    func defaults() throws {
        let configuration = try Self.load([:])
        #expect(configuration.intervalSeconds == 300 && configuration.health.timeoutSeconds == 10)
        #expect(configuration.failureThreshold == 3 && configuration.startPeriodSeconds == 0)
        #expect(configuration.port == 8080 && configuration.bind == "0.0.0.0" && configuration.sidecarID == "host-1")
        #expect(configuration.livenessFile == "/tmp/contingency-alive")
        #expect(configuration.backupStaleAfterSeconds == 26 * 3600 && configuration.rollbackWindowSeconds == 3600)
        #expect(configuration.store.backupDirectory == "/backups")
    }

    @Test("values as given")
    func given() throws {
        let configuration = try Self.load([
            "HEALTH_CHECK_INTERVAL": "30s", "HEALTH_CHECK_FAILURES": "5", "HEALTH_CHECK_START_PERIOD": "2m",
            "SIDECAR_PORT": "9090", "SIDECAR_BIND": "127.0.0.1", "SIDECAR_ID": "app-sidecar_1.a", "LIVENESS_FILE": "",
            "BACKUP_STALE_AFTER": "2d", "ROLLBACK_WINDOW": "30m",
        ])
        #expect(
            configuration.intervalSeconds == 30 && configuration.failureThreshold == 5
                && configuration.startPeriodSeconds == 120)
        #expect(
            configuration.port == 9090 && configuration.bind == "127.0.0.1"
                && configuration.sidecarID == "app-sidecar_1.a")
        #expect(configuration.livenessFile.isEmpty)
        #expect(configuration.backupStaleAfterSeconds == 172_800 && configuration.rollbackWindowSeconds == 1800)
    }

    @Test(
        "refused with the variable named",
        arguments: [
            (["SIDECAR_PORT": "70000"], "SIDECAR_PORT"), (["SIDECAR_PORT": "http"], "SIDECAR_PORT"),
            (["SIDECAR_ID": "../escape"], "SIDECAR_ID"), (["SIDECAR_ID": ".hidden"], "SIDECAR_ID"),
            (["SIDECAR_ID": "a b"], "SIDECAR_ID"), (["HEALTH_CHECK_INTERVAL": "0"], "HEALTH_CHECK_INTERVAL"),
            (["HEALTH_CHECK_FAILURES": "0"], "HEALTH_CHECK_FAILURES"),
            (["HEALTH_CHECK_START_PERIOD": "soon"], "HEALTH_CHECK_START_PERIOD"),
            (["BACKUP_STALE_AFTER": "x"], "BACKUP_STALE_AFTER"), (["SIDECAR_BIND": ""], "SIDECAR_BIND"),
            (["HEALTH_CHECK_URL": "ftp://app"], "HEALTH_CHECK_URL"),
        ])
    func refused(environment: [String: String], variable: String) {
        do {
            let configuration = try Self.load(environment)
            Issue.record("accepted \(environment): \(configuration)")
        } catch {
            #expect(error.description.contains(variable), "\(error)")
        }
    }
}
