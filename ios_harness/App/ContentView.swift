import HarnessCore
import SwiftUI

/// The one screen: run information, the model list, and Run / Cancel / Export.
struct ContentView: View {
    @ObservedObject var model: BenchmarkViewModel

    var body: some View {
        NavigationStack {
            List {
                Section("Run") {
                    LabeledContent("Device", value: model.deviceText)
                    LabeledContent("Configuration", value: model.configurationText)
                    if let progress = model.progress {
                        ProgressView(value: progress.fraction) {
                            Text(verbatim: "\(progress.model): \(progress.stage.rawValue) \(progress.completed)/\(progress.total)")
                        }
                    }
                    if let message = model.board.statusMessage {
                        Text(verbatim: message)
                            .font(.footnote)
                            .foregroundStyle(.secondary)
                    }
                }
                Section("Models") {
                    ForEach(model.board.rows) { row in
                        ModelRowView(row: row, isRunning: model.isRunning) {
                            model.run(model: row.name)
                        }
                    }
                }
            }
            .navigationTitle("MobileOne Bench")
            .toolbar {
                ToolbarItemGroup(placement: .primaryAction) {
                    if model.isRunning {
                        Button("Cancel", role: .cancel) {
                            model.cancel()
                        }
                    } else {
                        Button("Run all") {
                            model.runAll()
                        }
                        .disabled(model.board.rows.isEmpty)
                    }
                    if let url = model.reportURL {
                        ShareLink(item: url) {
                            Label("Export report", systemImage: "square.and.arrow.up")
                        }
                    }
                }
            }
        }
    }
}

/// A model: its name, then its latest min / median / mean or error, and a Run button.
struct ModelRowView: View {
    let row: ModelRow
    let isRunning: Bool
    let run: () -> Void

    var body: some View {
        HStack(alignment: .center, spacing: 12) {
            VStack(alignment: .leading, spacing: 4) {
                Text(verbatim: row.name)
                    .font(.headline)
                Text(verbatim: row.headline)
                    .font(row.result?.status == .error ? .caption : .caption.monospacedDigit())
                    .foregroundStyle(row.result?.status == .error ? Color.red : Color.secondary)
                if let detail = row.detail {
                    Text(verbatim: detail)
                        .font(.caption2)
                        .foregroundStyle(.secondary)
                }
            }
            Spacer()
            Button("Run", action: run)
                .buttonStyle(.bordered)
                .disabled(isRunning)
        }
    }
}
