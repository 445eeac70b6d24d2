import { MantineProvider } from "@mantine/core";
import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ChartFigure } from "../pages/dashboards/ChartFigure";
import { autoBucket, bucketLabel, money, pivot, rangeFrom, totalsRows, type Usage } from "../pages/dashboards/model";

const NOW = Date.parse("2026-12-02T20:44:31.500Z");

function point(bucketStart: string, key: string, runs: number, errors: number, costUsd = 0) {
  return {
    bucketStart,
    key,
    runs,
    errors,
    errorRate: runs ? errors / runs : null,
    inputTokens: 0,
    outputTokens: 0,
    costUsd,
    latencyMsAvg: runs ? 100 : null,
    latencyMsP50: runs ? 90 : null,
    latencyMsP95: runs ? 300 : null,
  };
}

describe("rangeFrom", () => {
  it("ends a named range at the end of the current minute and picks a bucket for its length", () => {
    const r = rangeFrom(new URLSearchParams("range=24h"), NOW);
    expect(r).toEqual({ name: "24h", from: "2026-12-01T20:45:00.000Z", to: "2026-12-02T20:45:00.000Z", bucket: "hour" });
    // in the first minute of an hour the range still holds that hour (runs made a second ago are counted)
    const early = rangeFrom(new URLSearchParams("range=24h"), Date.parse("2026-12-02T21:00:05Z"));
    expect(early.to).toBe("2026-12-02T21:01:00.000Z");
    expect(rangeFrom(new URLSearchParams("range=90d"), NOW).bucket).toBe("day");
    expect(rangeFrom(new URLSearchParams(""), NOW).name).toBe("7d");
    expect(rangeFrom(new URLSearchParams("range=bogus"), NOW).name).toBe("7d");
  });

  it("takes a custom from/to from the address and a bucket that overrides the automatic one", () => {
    const r = rangeFrom(new URLSearchParams("range=custom&from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z&bucket=day"), NOW);
    expect(r).toEqual({ name: "custom", from: "2026-01-01T00:00:00Z", to: "2026-12-01T00:00:00Z", bucket: "day" });
    expect(rangeFrom(new URLSearchParams("range=custom&from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z"), NOW).bucket).toBe("week");
    expect(autoBucket(24 * 7)).toBe("hour");
    expect(autoBucket(24 * 8)).toBe("day");
  });
});

describe("chart rows", () => {
  const usage = {
    from: "2026-12-01T00:00:00Z",
    to: "2026-12-03T00:00:00Z",
    bucket: "day",
    groupBy: "model",
    buckets: ["2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"],
    keys: [],
    series: [
      point("2026-12-01T00:00:00Z", "a", 4, 1, 0.5),
      point("2026-12-01T00:00:00Z", "b", 0, 0),
      point("2026-12-02T00:00:00Z", "a", 0, 0),
      point("2026-12-02T00:00:00Z", "b", 2, 0, 0.25),
    ],
    totals: point("", "", 6, 1),
    otherKeys: 0,
  } as unknown as Usage;

  it("pivots points into one row per bucket with a column per key", () => {
    expect(pivot(usage, (p) => p.costUsd)).toEqual([
      { bucket: "12-01", a: 0.5, b: 0 },
      { bucket: "12-02", a: 0, b: 0.25 },
    ]);
  });

  it("splits runs into successes and failures and gives the error rate in percent", () => {
    const rows = totalsRows({ ...usage, series: usage.series.slice(0, 1) });
    expect(rows).toEqual([{ bucket: "12-01", ok: 3, errors: 1, errorRate: 25, p50: 90, p95: 300, avg: 100 }]);
  });

  it("labels buckets in UTC and formats money", () => {
    expect(bucketLabel("2026-12-02T05:00:00Z", "hour")).toBe("12-02 05:00");
    expect(bucketLabel("2026-11-30T00:00:00Z", "week")).toBe("wk 11-30");
    expect(money(0)).toBe("$0");
    expect(money(0.000123456)).toBe("$0.000123");
    expect(money(12.5)).toBe("$12.50");
  });
});

describe("ChartFigure", () => {
  it("titles the chart, hides the drawing from screen readers and gives the numbers as a table", () => {
    render(
      <MantineProvider>
        <ChartFigure
          title="Runs per day"
          caption="Bars of runs."
          chart={<svg data-testid="drawing" />}
          rows={[{ day: "12-01", runs: 4 }]}
          columns={[
            { title: "Day", cell: (r) => r.day },
            { title: "Runs", cell: (r) => r.runs },
          ]}
        />
      </MantineProvider>,
    );
    expect(screen.getByRole("figure", { name: "Runs per day" })).toBeInTheDocument();
    expect(screen.getByTestId("drawing").parentElement).toHaveAttribute("aria-hidden", "true");
    const table = screen.getByRole("table", { name: "Runs per day", hidden: true });
    expect(table).toHaveTextContent("12-01");
    expect(table).toHaveTextContent("4");
  });

  it("says so in words when there is nothing to draw", () => {
    render(
      <MantineProvider>
        <ChartFigure title="Runs" caption="" empty="No runs in this range." chart={<svg />} rows={[]} columns={[]} />
      </MantineProvider>,
    );
    expect(screen.getByText("No runs in this range.")).toBeInTheDocument();
    expect(screen.queryByRole("table")).toBeNull();
  });
});
