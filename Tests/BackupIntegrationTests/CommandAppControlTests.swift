import BackupCore
import BackupKit
import Foundation
import Logging
import TestSupport
import Testing

/// `APP_CONTROL=command` and the factory that picks the app control from the settings.
@Suite("CommandAppControl")
struct CommandAppControlTests {
    func text(_ url: URL) -> String {
        ((try? String(contentsOf: url, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("stop runs APP_STOP_COMMAND, start runs APP_START_COMMAND; no version to read or restore")
    func commands() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let state = directory.appending("state")
        let settings = AppControlSettings(
            kind: .command,
            commands: Hooks(
                pre: "echo stopped > '\(state.path)'", post: "echo \"started $CONTINGENCY_JOB\" > '\(state.path)'"))
        let control = AppControlFactory.make(settings, logger: Logger(label: "test"))
        #expect(control is CommandAppControl)
        try await control.stop()
        #expect(text(state) == "stopped")
        try await control.start(on: AppDeployment(control: "docker"))
        #expect(text(state) == "started rollback")
        #expect(try await control.deployment() == nil)
        #expect(
            try await control.cannotRestore(AppDeployment(control: "docker"))
                == "APP_CONTROL=command cannot restore an application version")
    }

    @Test("a failing command is an error naming the variable and its output; a command not set does nothing")
    func failing() async throws {
        let control = CommandAppControl(
            commands: Hooks(pre: "echo app busy >&2; exit 4"), logger: Logger(label: "test"))
        let error = await #expect(throws: ContingencyError.self) { try await control.stop() }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("APP_STOP_COMMAND failed (exited(4)): app busy"), "\(message)")
        try await control.start(on: nil)
    }

    @Test("the factory: docker and kubernetes settings make their controls")
    func factory() {
        let logger = Logger(label: "test")
        let docker = AppControlFactory.make(
            AppControlSettings(kind: .docker, containerLabel: "contingency.app=visual", dockerSocket: "/run/x.sock"),
            logger: logger)
        #expect(
            (docker as? DockerAppControl).map { [$0.label, $0.socket] } == ["contingency.app=visual", "/run/x.sock"])
        #expect(
            AppControlFactory.make(AppControlSettings(kind: .kubernetes, deployment: "web"), logger: logger)
                is KubernetesAppControl)
    }
}
