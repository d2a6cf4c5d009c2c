"""Usage statistics: a tenant's messages counted per Beijing day (``DailyUsage``), rebuilt periodically from
the messages for the days that can still change, and the statistics the API answers from those counts alone.
"""
