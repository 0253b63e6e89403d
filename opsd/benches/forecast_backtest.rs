//! The month-end forecast's back-test figures: mean absolute percentage error by day-of-month
//! bucket and interval coverage, on seeded synthetic series, next to a naive run-rate forecast
//! (month-to-date ÷ days elapsed × days in the month) on the same days.
//!
//! Run: `cargo bench -p opsd --bench forecast_backtest` (options after `--`: `--seeds N`,
//! `--days N`). Every series is synthetic (see `opsd::core::cost::synthetic`), the recorded-like
//! one included: it follows the reference cost estimate of R-COST-15 (docs/requirements.md), not a
//! real bill.

use chrono::{Datelike, NaiveDate};

use opsd::core::cost::backtest::{backtest, BacktestOptions, BacktestReport, DAY_OF_MONTH_BUCKETS};
use opsd::core::cost::month_bounds;
use opsd::core::cost::synthetic::{generate, Pattern};
use opsd::core::cost::DailyTotals;

struct Settings {
    seeds: u64,
    days: usize,
}

fn settings() -> Result<Settings, String> {
    let mut settings = Settings {
        seeds: 10,
        days: 731,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--seeds" | "--days" => {
                let value = arguments
                    .next()
                    .ok_or_else(|| format!("{argument} needs a number"))?;
                let number: u64 = value
                    .parse()
                    .map_err(|_| format!("{argument} {value:?} is not a whole number"))?;
                if number == 0 {
                    return Err(format!("{argument} must be at least 1"));
                }
                if argument == "--seeds" {
                    settings.seeds = number;
                } else {
                    settings.days = number as usize;
                }
            }
            // cargo bench passes `--bench`.
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown option {other:?}; use --seeds N or --days N"
                ))
            }
        }
    }
    Ok(settings)
}

/// The naive run-rate forecast's absolute percentage errors, per bucket, over whole months.
fn naive_errors(series: &DailyTotals, min_history_days: usize) -> [Vec<f64>; 4] {
    let mut errors: [Vec<f64>; 4] = Default::default();
    let (Some((&first_day, _)), Some((&last_day, _))) =
        (series.first_key_value(), series.last_key_value())
    else {
        return errors;
    };
    for today in first_day.iter_days().take_while(|day| *day <= last_day) {
        let Ok((month_start, month_end)) = month_bounds(today) else {
            continue;
        };
        if month_start < first_day || month_end > last_day {
            continue;
        }
        if series.range(first_day..=today).count() < min_history_days {
            continue;
        }
        let truth: f64 = series.range(month_start..=month_end).map(|(_, v)| v).sum();
        if truth <= 0.0 {
            continue;
        }
        let month_to_date: f64 = series.range(month_start..=today).map(|(_, v)| v).sum();
        let naive = month_to_date / f64::from(today.day()) * f64::from(month_end.day());
        let bucket = DAY_OF_MONTH_BUCKETS
            .iter()
            .position(|(first, last, _)| (*first..=*last).contains(&today.day()))
            .unwrap_or(3);
        errors[bucket].push((naive - truth).abs() / truth * 100.0);
    }
    errors
}

fn average(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn main() {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("forecast_backtest: {message}");
            std::process::exit(1);
        }
    };
    let first_day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("2024-01-01 is a date");
    let options = BacktestOptions::default();
    println!(
        "forecast back-test: {} seeds x {} days from {first_day} per pattern, forecasts from \
         day {} of history on; MAPE of the point forecast (naive run-rate in brackets), 80 % \
         interval coverage",
        settings.seeds, settings.days, options.min_history_days
    );
    println!();
    let mut header = format!("{:<16} {:>7}", "series", "months");
    for (_, _, label) in DAY_OF_MONTH_BUCKETS {
        header.push_str(&format!(" {:>18}", format!("MAPE {label}")));
    }
    header.push_str(&format!(
        " {:>16} {:>8} {:>9} {:>9}",
        "MAPE all", "bias", "max APE", "coverage"
    ));
    println!("{header}");
    for pattern in Pattern::ALL {
        let mut reports: Vec<BacktestReport> = Vec::new();
        let mut naive: [Vec<f64>; 4] = Default::default();
        for seed in 1..=settings.seeds {
            let series = generate(pattern, first_day, settings.days, seed);
            match backtest(&series, &options) {
                Ok(report) => reports.push(report),
                Err(error) => {
                    eprintln!("forecast_backtest: {}: {error}", pattern.name());
                    std::process::exit(1);
                }
            }
            for (bucket, errors) in naive_errors(&series, options.min_history_days)
                .into_iter()
                .enumerate()
            {
                naive[bucket].extend(errors);
            }
        }
        // Every seed has the same months and forecast days, so plain averages pool them.
        let mean_of = |pick: &dyn Fn(&BacktestReport) -> Option<f64>| {
            average(&reports.iter().filter_map(pick).collect::<Vec<f64>>())
        };
        let months: usize = reports.iter().map(|report| report.months).sum();
        let mut line = format!("{:<16} {:>7}", pattern.name(), months);
        for (bucket, errors) in naive.iter().enumerate() {
            let ours = mean_of(&|report| report.buckets[bucket].mape_percent);
            line.push_str(&format!(
                " {:>18}",
                format!("{ours:.2}% [{:.2}%]", average(errors))
            ));
        }
        let naive_all: Vec<f64> = naive.iter().flatten().copied().collect();
        let max_ape = reports
            .iter()
            .filter_map(|report| report.overall.max_ape_percent)
            .fold(f64::NAN, f64::max);
        line.push_str(&format!(
            " {:>16} {:>7.2}% {:>8.1}% {:>8.1}%",
            format!(
                "{:.2}% [{:.2}%]",
                mean_of(&|report| report.overall.mape_percent),
                average(&naive_all)
            ),
            mean_of(&|report| report.overall.bias_percent),
            max_ape,
            mean_of(&|report| report.overall.coverage_percent),
        ));
        println!("{line}");
    }
    println!();
    println!("coverage by bucket (share of forecasts whose 80 % interval held the month's total):");
    let mut header = format!("{:<16}", "series");
    for (_, _, label) in DAY_OF_MONTH_BUCKETS {
        header.push_str(&format!(" {label:>11}"));
    }
    println!("{header}");
    for pattern in Pattern::ALL {
        let reports: Vec<BacktestReport> = (1..=settings.seeds)
            .filter_map(|seed| {
                backtest(&generate(pattern, first_day, settings.days, seed), &options).ok()
            })
            .collect();
        let mut line = format!("{:<16}", pattern.name());
        for bucket in 0..DAY_OF_MONTH_BUCKETS.len() {
            let coverage: Vec<f64> = reports
                .iter()
                .filter_map(|report| report.buckets[bucket].coverage_percent)
                .collect();
            line.push_str(&format!(" {:>10.1}%", average(&coverage)));
        }
        println!("{line}");
    }
}
