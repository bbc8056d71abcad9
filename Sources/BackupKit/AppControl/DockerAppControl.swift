import BackupCore
import Foundation
import Logging

/// `APP_CONTROL=docker`: the application is the containers that carry `APP_CONTAINER_LABEL`, reached through the
/// Docker Engine API on the socket of `DOCKER_HOST` (`DockerEngine`). Its version is each container's name and
/// image id; restoring a version recreates a container whose image changed on the recorded image id, with the
/// configuration it has now (environment, command, labels, mounts, ports, restart policy, networks).
///
/// Nothing is kept in memory between calls: the engine's own state (which containers exist, which run, which
/// image each runs) is all a new process needs, so `start` works after any `stop`, even one that was cut short.
public struct DockerAppControl: AppControl {
    public let label: String
    public let socket: String
    let engine: DockerEngine
    let logger: Logger

    /// How long one container may take to stop (its own stop timeout, compose's `stop_grace_period`, applies;
    /// this only bounds the wait for the engine's answer).
    static let stopAnswerTimeout: Double = 15 * 60

    public init(label: String, socket: String, logger: Logger) {
        self.label = label
        self.socket = socket
        engine = DockerEngine(socket: socket)
        self.logger = logger
    }

    public init(settings: AppControlSettings, logger: Logger) {
        self.init(label: settings.containerLabel ?? "", socket: settings.dockerSocket, logger: logger)
    }

    public var description: String { "docker (containers labelled \(label) at \(socket))" }

    // MARK: - AppControl

    public func deployment() async throws -> AppDeployment? {
        var containers: [AppDeployment.Container] = []
        // A container put aside by an interrupted recreate is not part of the application's version.
        for listed in try await labelledContainers() where Self.originalName(ofAside: Self.listedName(listed)) == nil {
            guard let id = listed["Id"]?.stringValue, let inspect = try await engine.inspectContainer(id) else {
                continue
            }
            containers.append(
                AppDeployment.Container(
                    name: Self.name(of: inspect), imageID: Self.imageID(of: inspect),
                    image: inspect["Config"]?["Image"]?.stringValue ?? listed["Image"]?.stringValue ?? ""))
        }
        guard !containers.isEmpty else { throw noContainers() }
        return AppDeployment(control: "docker", containers: containers.sorted { $0.name < $1.name })
    }

    public func cannotRestore(_ deployment: AppDeployment) async throws -> String? {
        guard deployment.control == "docker" else {
            return
                "the backup recorded its version with APP_CONTROL=\(deployment.control), "
                + "this runner uses APP_CONTROL=docker: "
                + "set ROLLBACK_DATA_ONLY=true to restore the data alone"
        }
        guard let containers = deployment.containers, !containers.isEmpty else {
            return "the backup recorded no container: set ROLLBACK_DATA_ONLY=true to restore the data alone"
        }
        for container in containers {
            if try await engine.inspectImage(container.imageID) == nil {
                return
                    "image \(container.imageID) (\(container.image)) of container \(container.name) "
                    + "is no longer on this host "
                    + "(\(socket)): pull it (docker pull \(container.image), if that tag still names it) "
                    + "or set ROLLBACK_DATA_ONLY=true"
            }
            if try await engine.inspectContainer(container.name) == nil {
                return "container \(container.name), recorded with the backup, no longer exists on \(socket): "
                    + "create it again (docker compose up) or set ROLLBACK_DATA_ONLY=true"
            }
        }
        return nil
    }

    /// Stops every labelled container that runs, all at once (each with its own stop timeout), and returns
    /// once the engine lists none of them as running.
    public func stop() async throws {
        let containers = try await labelledContainers()
        guard !containers.isEmpty else { throw noContainers() }
        let running = containers.filter { Self.isUp($0["State"]?.stringValue) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for container in running {
                guard let id = container["Id"]?.stringValue else { continue }
                let name = Self.listedName(container)
                group.addTask {
                    let answer = try await engine.send(
                        "POST", "/containers/\(id)/stop", timeout: Self.stopAnswerTimeout,
                        what: "stop container \(name)")
                    // 304: it had stopped already; 404: it was removed meanwhile. Both leave it not running.
                    guard [204, 304, 404].contains(answer.status) else {
                        throw engine.failure(answer, "stop container \(name)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let stillUp = try await labelledContainers().filter { Self.isUp($0["State"]?.stringValue) }.map(Self.listedName)
        guard stillUp.isEmpty else {
            throw ContingencyError.failed(
                "container(s) \(stillUp.joined(separator: ", ")) labelled \(label) still run after being stopped "
                    + "(\(socket))",
                hint: "look at them with docker ps; a restart policy or another tool may be starting them again")
        }
        logger.info("Application stopped: \(running.count) container(s) labelled \(label)\(Self.names(running))")
    }

    /// Starts every labelled container. With `deployment`, first recreates each recorded container whose image
    /// is no longer the recorded one on that image. Tries every container even when one fails, then throws
    /// what failed.
    public func start(on deployment: AppDeployment?) async throws {
        var failures: [String] = []
        var recreated: Set<String> = []
        do {
            try await finishInterruptedRecreates()
        } catch {
            failures.append("\(error)")
        }
        if let deployment {
            // The app is started whatever happens: a version that cannot be put back is a failure to report.
            if let reason = Self.mismatch(deployment) {
                failures.append("cannot restore \(deployment.summary): \(reason)")
            }
            for recorded in Self.mismatch(deployment) == nil ? deployment.containers ?? [] : [] {
                do {
                    if try await restore(recorded) { recreated.insert(recorded.name) }
                } catch {
                    failures.append("\(error)")
                }
            }
        }
        let containers = try await labelledContainers()
        guard !containers.isEmpty else { throw noContainers() }
        var started: [JSONValue] = []
        for container in containers where !Self.isUp(container["State"]?.stringValue) {
            let name = Self.listedName(container)
            guard let id = container["Id"]?.stringValue, !recreated.contains(name) else { continue }
            do {
                let answer = try await engine.send("POST", "/containers/\(id)/start", what: "start container \(name)")
                guard [204, 304].contains(answer.status) else {
                    throw engine.failure(answer, "start container \(name)")
                }
                started.append(container)
            } catch {
                failures.append("\(error)")
            }
        }
        guard failures.isEmpty else {
            throw ContingencyError.failed(
                "the application is not fully started: " + failures.joined(separator: "; "),
                hint: "look at the containers labelled \(label) with docker ps -a and docker logs")
        }
        let count = started.count + recreated.count
        logger.info("Application started: \(count) container(s) labelled \(label)\(Self.names(started))")
    }

    // MARK: - Restoring a container's image

    /// Puts `recorded` back on its image: recreates it when it runs another image now. Returns whether it did
    /// (the new container is then started).
    private func restore(_ recorded: AppDeployment.Container) async throws -> Bool {
        guard let current = try await engine.inspectContainer(recorded.name) else {
            throw ContingencyError.failed(
                "container \(recorded.name), recorded with the backup, no longer exists on \(socket)",
                hint: "create it again (docker compose up) or restore the data alone (ROLLBACK_DATA_ONLY=true)")
        }
        let currentImage = Self.imageID(of: current)
        guard currentImage != Self.normalized(recorded.imageID) else { return false }
        try await recreate(current, name: recorded.name, on: recorded)
        let replaced = "\(current["Config"]?["Image"]?.stringValue ?? "?") (\(currentImage.prefix(19)))"
        let image = "\(recorded.image) (\(recorded.imageID.prefix(19)))"
        logger.notice("Recreated container \(recorded.name) on its recorded image \(image), replacing \(replaced)")
        return true
    }

    /// Replaces `current` by a container of the same name and configuration on `recorded`'s image. The old one
    /// is renamed aside and removed only once the new one runs; any failure before that removes the new one and
    /// gives the old one its name back (`start` then starts it with the others), so a failed recreate leaves what
    /// was there; a recreate cut short by the runner's death is finished by the next `start`.
    private func recreate(_ current: JSONValue, name: String, on recorded: AppDeployment.Container) async throws {
        guard let oldID = current["Id"]?.stringValue else {
            throw ContingencyError.failed("inspect container \(name): the Docker engine at \(socket) gave no Id")
        }
        let currentImage = try await engine.inspectImage(Self.imageID(of: current))
        let body = DockerCreateBody.make(
            from: current, imageID: Self.normalized(recorded.imageID), imageConfig: currentImage?["Config"],
            keepingLabel: labelKey)
        if current["State"]?["Running"] == .bool(true) {
            let answer = try await engine.send(
                "POST", "/containers/\(oldID)/stop", timeout: Self.stopAnswerTimeout, what: "stop container \(name)")
            guard [204, 304].contains(answer.status) else { throw engine.failure(answer, "stop container \(name)") }
        }
        let aside = "\(name)-replaced-\(oldID.prefix(12))"
        try await engine.call(
            "POST", "/containers/\(oldID)/rename", query: ["name": aside], what: "rename container \(name) to \(aside)")

        var newID: String?
        do {
            let created = try await engine.call(
                "POST", "/containers/create", query: ["name": name], body: body.create, accepted: [201],
                what: "create container \(name) on image \(recorded.imageID)")
            guard let id = created["Id"]?.stringValue else {
                throw ContingencyError.failed("create container \(name): the Docker engine at \(socket) gave no Id")
            }
            newID = id
            for (network, endpoint) in body.extraNetworks {
                try await engine.call(
                    "POST", "/networks/\(DockerEngine.escaped(network))/connect",
                    body: .object(["Container": .string(id), "EndpointConfig": endpoint]), accepted: [200],
                    what: "connect container \(name) to network \(network)")
            }
            try await engine.call(
                "POST", "/containers/\(id)/start", accepted: [204, 304], what: "start container \(name)")
        } catch {
            // Put the old container back as it was: its name, and running if it ran.
            if let newID {
                _ = try? await engine.send(
                    "DELETE", "/containers/\(newID)", query: ["force": "1"], what: "remove container \(name)")
            }
            let restored = try? await engine.call(
                "POST", "/containers/\(oldID)/rename", query: ["name": name],
                what: "rename container \(aside) back to \(name)")
            if restored == nil {
                let fix = "docker rename \(aside) \(name)"
                logger.error("Container \(name) could not be renamed back from \(aside): rename it by hand (\(fix))")
            }
            throw ContingencyError.failed(
                "container \(name) could not be recreated on its recorded image \(recorded.image) "
                    + "(\(recorded.imageID.prefix(19))); "
                    + "it was left as it was: \(error)")
        }
        let removed = try? await engine.call(
            "DELETE", "/containers/\(oldID)", query: ["v": "0", "force": "1"], what: "remove container \(aside)")
        if removed == nil {
            logger.warning(
                "The replaced container \(aside) could not be removed: remove it by hand (docker rm \(aside))")
        }
    }

    /// A runner killed in the middle of a recreate leaves the old container under its aside name
    /// (`web-replaced-0123456789ab`). When no container has its name any more, it gets it back (the recreate had
    /// not created the new one); when one does, the new one exists and the aside one is the replaced version,
    /// removed as the recreate would have. Either way it is never started beside the application.
    private func finishInterruptedRecreates() async throws {
        let containers = try await labelledContainers()
        let names = Set(containers.map(Self.listedName))
        for container in containers {
            let aside = Self.listedName(container)
            guard let name = Self.originalName(ofAside: aside), let id = container["Id"]?.stringValue else { continue }
            if names.contains(name) {
                try await engine.call(
                    "DELETE", "/containers/\(id)", query: ["v": "0", "force": "1"],
                    what: "remove container \(aside), replaced by \(name) in an interrupted recreate")
                logger.notice("Removed container \(aside), which an interrupted recreate had replaced by \(name)")
            } else {
                try await engine.call(
                    "POST", "/containers/\(id)/rename", query: ["name": name],
                    what: "rename container \(aside) back to \(name)")
                logger.notice("Renamed container \(aside) back to \(name): a recreate had been interrupted")
            }
        }
    }

    /// The name a container renamed aside by `recreate` had: `web` for `web-replaced-0123456789ab`.
    static func originalName(ofAside aside: String) -> String? {
        guard let marker = aside.range(of: "-replaced-", options: .backwards), marker.lowerBound > aside.startIndex
        else { return nil }
        let id = aside[marker.upperBound...]
        guard id.count == 12, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return String(aside[..<marker.lowerBound])
    }

    // MARK: - Helpers

    private func labelledContainers() async throws -> [JSONValue] {
        try await engine.containers(labelled: label)
    }

    /// The label's key (`contingency.app` of `contingency.app=visual`), kept on every recreated container.
    private var labelKey: String { String(label.prefix { $0 != "=" }) }

    private func noContainers() -> ContingencyError {
        .failed(
            "no container carries the label \(label) (APP_CONTAINER_LABEL) on the Docker engine at \(socket)",
            hint: "label the application's containers with it (compose: labels: [\"\(label)\"]), "
                + "or set APP_CONTAINER_LABEL to the label they carry")
    }

    /// Why this control cannot put `deployment` back, whatever the engine holds.
    static func mismatch(_ deployment: AppDeployment) -> String? {
        if deployment.control != "docker" { return "it was recorded with APP_CONTROL=\(deployment.control)" }
        if deployment.containers?.isEmpty ?? true { return "it records no container" }
        return nil
    }

    /// Running, restarting or paused: not stopped. (Docker stops a paused container too.)
    static func isUp(_ state: String?) -> Bool {
        ["running", "restarting", "paused"].contains(state ?? "")
    }

    static func name(of inspect: JSONValue) -> String {
        let name = inspect["Name"]?.stringValue ?? inspect["Id"]?.stringValue ?? "?"
        return name.hasPrefix("/") ? String(name.dropFirst()) : name
    }

    static func listedName(_ listed: JSONValue) -> String {
        if case .array(let names)? = listed["Names"], let first = names.first?.stringValue {
            return first.hasPrefix("/") ? String(first.dropFirst()) : first
        }
        return String((listed["Id"]?.stringValue ?? "?").prefix(12))
    }

    static func names(_ listed: [JSONValue]) -> String {
        listed.isEmpty ? "" : " (\(listed.map(listedName).joined(separator: ", ")))"
    }

    static func imageID(of inspect: JSONValue) -> String { normalized(inspect["Image"]?.stringValue ?? "") }

    /// Image ids with their `sha256:` prefix, as Docker writes them.
    static func normalized(_ id: String) -> String {
        id.isEmpty || id.contains(":") ? id : "sha256:\(id)"
    }
}
